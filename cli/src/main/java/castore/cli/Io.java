package castore.cli;

import castore.ingest.posix.Posix;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * A command's streams: stdout carries bytes (file contents, raw names), stderr carries messages,
 * progress and summaries. {@code errIsTerminal} says whether a progress line may be drawn.
 * {@code rawArguments} maps an argument as Java decoded it back to the bytes the user typed,
 * which differ when the argument is not valid in the platform encoding.
 */
public record Io(PrintStream out, PrintStream err, boolean errIsTerminal, Map<String, byte[]> rawArguments) {

    /** Streams on the given byte sinks; no terminal; arguments are taken as UTF-8. */
    public static Io of(OutputStream out, OutputStream err) {
        return new Io(new PrintStream(out, false, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8),
                false, Map.of());
    }

    /** The process's stdout and stderr, with the raw bytes of {@code args} when they can be recovered. */
    static Io system(String[] args) {
        PrintStream out = new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16),
                false, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        return new Io(out, err, Posix.isatty(2), RawArguments.recover(args));
    }

    /** The bytes of a command-line argument as typed. */
    public byte[] bytes(String argument) {
        byte[] raw = rawArguments.get(argument);
        return raw != null ? raw.clone() : argument.getBytes(StandardCharsets.UTF_8);
    }
}
