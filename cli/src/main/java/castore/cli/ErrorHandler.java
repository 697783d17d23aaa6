package castore.cli;

import castore.ingest.SpecialFileException;
import castore.ingest.posix.PosixException;
import castore.model.InvalidDataException;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import castore.service.StoreBusyException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import picocli.CommandLine;
import picocli.CommandLine.IExecutionExceptionHandler;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

/**
 * Turns failures into one line on stderr, {@code castore: <what went wrong>}, and a documented
 * exit code (see {@link ExitCodes}); never a stack trace, unless CASTORE_DEBUG is set.
 */
final class ErrorHandler implements IExecutionExceptionHandler {
    @Override
    public int handleExecutionException(Exception e, CommandLine cmd, ParseResult parseResult) {
        return report(e, cmd.getErr());
    }

    /** One line on {@code err} for {@code e}; returns its exit code. */
    static int report(Throwable e, java.io.PrintWriter err) {
        Throwable t = unwrap(e);
        err.println("castore: " + message(t));
        if (System.getenv("CASTORE_DEBUG") != null) {
            t.printStackTrace(err);
        }
        err.flush();
        return exitCode(t);
    }

    /** Bad command line: one line with the message and where to find help, exit code {@link ExitCodes#USAGE}. */
    static int usage(ParameterException e, String[] args) {
        CommandLine cmd = e.getCommandLine();
        cmd.getErr().println("castore: " + e.getMessage() + " (see '" + cmd.getCommandSpec().qualifiedName() + " --help')");
        cmd.getErr().flush();
        return ExitCodes.USAGE;
    }

    static Throwable unwrap(Throwable e) {
        Throwable t = e;
        while ((t instanceof UncheckedIOException || t instanceof ExecutionException || t instanceof CompletionException)
                && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    static String message(Throwable t) {
        return switch (t) {
            case NoSuchFileException n -> "no such file or directory: " + n.getFile();
            case AccessDeniedException a -> "permission denied: " + a.getFile();
            case StoreBusyException b -> b.getMessage();
            case OutOfMemoryError o -> "out of memory (raise it with CASTORE_JAVA_OPTS=-Xmx...)";
            case Error err -> "internal error: " + err + " (run with CASTORE_DEBUG=1 for details)";
            default -> t.getMessage() == null || t.getMessage().isBlank() ? t.toString() : t.getMessage();
        };
    }

    static int exitCode(Throwable t) {
        return switch (t) {
            case CliException c -> c.exitCode();
            case InvalidDataException i -> ExitCodes.INVALID;
            case SpecialFileException s -> ExitCodes.INVALID;
            case NotFoundException n -> ExitCodes.NOT_FOUND;
            case NoSuchFileException n -> ExitCodes.NOT_FOUND;
            case PosixException p when p.notFound() -> ExitCodes.NOT_FOUND;
            case StoreBusyException b -> ExitCodes.BUSY;
            case CorruptedDataException c -> ExitCodes.IO;
            case IOException io -> ExitCodes.IO;
            default -> ExitCodes.INTERNAL;
        };
    }
}
