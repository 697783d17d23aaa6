package castore.cli;

import castore.model.InvalidDataException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;
import picocli.CommandLine.IExecutionExceptionHandler;
import picocli.CommandLine.ParseResult;

/** Turns failures into one line on stderr and a documented exit code; never a stack trace. */
final class ErrorHandler implements IExecutionExceptionHandler {
    @Override
    public int handleExecutionException(Exception e, CommandLine cmd, ParseResult parseResult) {
        Throwable t = e instanceof UncheckedIOException u ? u.getCause() : e;
        String message = switch (t) {
            case NoSuchFileException n -> "no such file or directory: " + n.getFile();
            case AccessDeniedException a -> "permission denied: " + a.getFile();
            case CliException c -> c.getMessage();
            default -> t.getMessage() == null ? t.toString() : t.getMessage();
        };
        cmd.getErr().println("castore: " + message);
        if (System.getenv("CASTORE_DEBUG") != null) {
            t.printStackTrace(cmd.getErr());
        }
        return switch (t) {
            case CliException c -> c.exitCode();
            case InvalidDataException i -> ExitCodes.INVALID;
            case NoSuchFileException n -> ExitCodes.NOT_FOUND;
            case IOException io -> ExitCodes.IO;
            default -> ExitCodes.INTERNAL;
        };
    }
}
