package castore.cli;

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

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command");
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code (see README: exit codes). */
    public static int run(String... args) {
        return new CommandLine(new Main())
                .setExecutionExceptionHandler(new ErrorHandler())
                .execute(args);
    }
}
