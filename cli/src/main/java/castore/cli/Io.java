package castore.cli;

import castore.ingest.posix.Posix;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * A command's streams: stdout carries bytes (file contents, raw names), stderr carries messages,
 * progress and summaries. {@code errTerminal} says whether a progress line may be drawn (asked
 * only by commands that draw one: it costs the first native call). {@code rawArguments} maps an
 * argument as Java decoded it back to the bytes the user typed, which differ when the argument is
 * not valid in the platform encoding. {@code outFailures} keeps the first error writing to
 * {@code out}, which PrintStream swallows.
 */
public record Io(PrintStream out, PrintStream err, BooleanSupplier errTerminal, Map<String, byte[]> rawArguments,
        FailureKeeper outFailures) {

    /** Streams on the given byte sinks; no terminal; arguments are taken as UTF-8. */
    public static Io of(OutputStream out, OutputStream err) {
        FailureKeeper failures = new FailureKeeper(out);
        return new Io(new PrintStream(failures, false, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8),
                () -> false, Map.of(), failures);
    }

    /** The first error writing to stdout, or null: why {@code out().checkError()} is true. */
    public IOException outFailure() {
        return outFailures.first;
    }

    /** Whether stderr is a terminal. */
    public boolean errIsTerminal() {
        return errTerminal.getAsBoolean();
    }

    /** The process's stdout and stderr, with the raw bytes of {@code args} when they can be recovered. */
    static Io system(String[] args) {
        FailureKeeper failures = new FailureKeeper(new FileOutputStream(FileDescriptor.out));
        PrintStream out = new PrintStream(new BufferedOutputStream(failures, 1 << 16), false, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        return new Io(out, err, () -> Posix.isatty(2), RawArguments.recover(args), failures);
    }

    /** Passes writes on and keeps the first error, so that the message can say what went wrong (a full disk, a closed pipe). */
    static final class FailureKeeper extends FilterOutputStream {
        private volatile IOException first;

        FailureKeeper(OutputStream out) {
            super(out);
        }

        @Override
        public void write(int b) throws IOException {
            try {
                out.write(b);
            } catch (IOException e) {
                throw kept(e);
            }
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            try {
                out.write(b, off, len);
            } catch (IOException e) {
                throw kept(e);
            }
        }

        @Override
        public void flush() throws IOException {
            try {
                out.flush();
            } catch (IOException e) {
                throw kept(e);
            }
        }

        private IOException kept(IOException e) {
            if (first == null) {
                first = e;
            }
            return e;
        }
    }

    /**
     * Refuses a name that java.nio would open under other bytes: stores, caches and mountpoints
     * are opened through java.nio, which decodes a name that is not UTF-8 into U+FFFD, so a store
     * would be created or looked for under another name. {@code value} is the decoded argument.
     */
    static String requireUtf8(String option, String value) {
        if (value != null && value.indexOf('\uFFFD') >= 0) {
            throw new castore.model.InvalidDataException(option + ": '" + value + "' has bytes that are not UTF-8 (shown as \uFFFD);"
                    + " castore opens stores, caches and mountpoints only under UTF-8 names");
        }
        return value;
    }

    /** The bytes of a command-line argument as typed. */
    public byte[] bytes(String argument) {
        byte[] raw = rawArguments.get(argument);
        if (raw == RawArguments.AMBIGUOUS) {
            throw new castore.model.InvalidDataException("'" + argument + "' stands for two different byte strings on the"
                    + " command line (not UTF-8, shown as \uFFFD): castore cannot tell which is which; give them in separate commands");
        }
        return raw != null ? raw.clone() : argument.getBytes(StandardCharsets.UTF_8);
    }
}
