package castore.cli;

import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The castore command: subcommands for import/export, inspection, mount and serving. */
@Command(name = "castore", mixinStandardHelpOptions = true, version = "castore 0.1.0",
        description = "Content-addressed store for file trees (tvix-castore compatible) with a read-only FUSE filesystem.",
        subcommands = {
            ImportCommand.class, ExportCommand.class, RootsCommand.class, LsCommand.class, CatCommand.class,
            StatCommand.class, RmCommand.class, VerifyCommand.class, GcCommand.class, MountCommand.class,
            DaemonCommand.class, CommandLine.HelpCommand.class,
        })
public final class Main implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    private final Io io;

    Main(Io io) {
        this.io = io;
    }

    /** The streams subcommands write to (reach it with {@code @ParentCommand Main main}). */
    public Io io() {
        return io;
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command");
    }

    public static void main(String[] args) {
        System.exit(run(Io.system(args), args));
    }

    /** Runs the command line on the process's stdout and stderr and returns the exit code. */
    public static int run(String... args) {
        return run(Io.system(args), args);
    }

    /** Runs the command line on the given streams and returns the exit code (see {@link ExitCodes}). */
    public static int run(Io io, String... args) {
        CommandLine cmd = new CommandLine(new Main(io))
                .setOut(new PrintWriter(io.out(), true, StandardCharsets.UTF_8))
                .setErr(new PrintWriter(io.err(), true, StandardCharsets.UTF_8))
                .setExecutionExceptionHandler(new ErrorHandler())
                .setParameterExceptionHandler(ErrorHandler::usage);
        try {
            return cmd.execute(args);
        } finally {
            io.out().flush();
            io.err().flush();
        }
    }
}
