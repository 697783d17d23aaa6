package castore.cli;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.logging.Formatter;
import java.util.logging.LogManager;
import java.util.logging.LogRecord;

/**
 * What the modules log (java.util.logging, through System.Logger) as castore's own lines on
 * stderr: {@code castore: <message>[: <exception>]}, one line each, the stack trace only under
 * CASTORE_DEBUG. The JDK's default format is two lines with a date and the logging class, and
 * the stack trace of any exception.
 */
public final class LogLines extends Formatter {
    private static final String CONFIG_PROPERTY = "java.util.logging.config.class";

    /**
     * Makes java.util.logging configure itself with {@link Config} when it first starts, so a
     * command that logs nothing pays nothing. A configuration the user gave is left alone.
     */
    static void install() {
        if (System.getProperty(CONFIG_PROPERTY) == null && System.getProperty("java.util.logging.config.file") == null) {
            System.setProperty(CONFIG_PROPERTY, Config.class.getName());
        }
    }

    @Override
    public String format(LogRecord record) {
        StringBuilder line = new StringBuilder("castore: ").append(formatMessage(record));
        Throwable thrown = record.getThrown();
        if (thrown != null) {
            line.append(": ").append(ErrorHandler.message(ErrorHandler.unwrap(thrown)));
        }
        line.append(System.lineSeparator());
        if (thrown != null && System.getenv("CASTORE_DEBUG") != null) {
            StringWriter trace = new StringWriter();
            thrown.printStackTrace(new PrintWriter(trace));
            line.append(trace);
        }
        return line.toString();
    }

    /** Named by java.util.logging.config.class: the console handler on stderr with {@link LogLines}, as before at INFO. */
    public static final class Config {
        public Config() {
            String properties = String.join("\n",
                    "handlers=java.util.logging.ConsoleHandler",
                    ".level=INFO",
                    "java.util.logging.ConsoleHandler.level=INFO",
                    "java.util.logging.ConsoleHandler.formatter=" + LogLines.class.getName(),
                    // Once a call is cancelled (a message over the size limit, a read-ahead no
                    // longer wanted), every data frame still arriving for it is an INFO line
                    // "Received data on closed stream": 66 of them for one 22 MB Directory.
                    "io.grpc.internal.AbstractClientStream.level=WARNING",
                    "");
            try {
                LogManager.getLogManager().readConfiguration(new ByteArrayInputStream(properties.getBytes(StandardCharsets.UTF_8)));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
