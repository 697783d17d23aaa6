package castore.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The castore command: subcommands for import/export, copies between stores, inspection, mount and serving. */
@Command(name = "castore", mixinStandardHelpOptions = true, version = "castore 0.1.0",
        description = "Content-addressed store for file trees (tvix-castore compatible) with a read-only FUSE filesystem.")
public final class Main implements Runnable {
    /**
     * The subcommands, in help order. Picocli reflects over every registered command before it
     * parses anything (a third of a short command's start-up), so a command line that names one
     * gets only that one, --version none; anything else (no command, --help, help, a typo) gets all.
     */
    private static final List<String> COMMANDS =
            List.of("import", "export", "copy", "roots", "ls", "cat", "stat", "rm", "verify", "gc", "mount", "daemon", "help");

    /**
     * A new instance of the named command, or null. (A switch, not a map of constructor
     * references: a method handle to picocli's HelpCommand crashed the AOT cache's assembly in
     * JDK 25 while picocli's classes were in the Java 5 format; the launcher's copy no longer is
     * (module build-tools), but picocli as Maven resolves it for tests still is.)
     */
    private static Object command(String name) {
        return switch (name) {
            case "import" -> new ImportCommand();
            case "export" -> new ExportCommand();
            case "copy" -> new CopyCommand();
            case "roots" -> new RootsCommand();
            case "ls" -> new LsCommand();
            case "cat" -> new CatCommand();
            case "stat" -> new StatCommand();
            case "rm" -> new RmCommand();
            case "verify" -> new VerifyCommand();
            case "gc" -> new GcCommand();
            case "mount" -> new MountCommand();
            case "daemon" -> new DaemonCommand();
            case "help" -> new CommandLine.HelpCommand();
            default -> null;
        };
    }

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
        LogLines.install(); // before any module logs: its lines read as castore's own
        System.exit(run(Io.system(args), args));
    }

    /** Runs the command line on the process's stdout and stderr and returns the exit code. */
    public static int run(String... args) {
        return run(Io.system(args), args);
    }

    /** Runs the command line on the given streams and returns the exit code (see {@link ExitCodes}). */
    public static int run(Io io, String... args) {
        CommandLine cmd = new CommandLine(new Main(io));
        String first = args.length > 0 ? args[0] : "";
        Object named = first.equals("help") ? null : command(first);
        if (named != null) {
            cmd.addSubcommand(named);
        } else if (args.length != 1 || !(first.equals("--version") || first.equals("-V"))) {
            COMMANDS.forEach(name -> cmd.addSubcommand(command(name)));
        }
        // After the subcommands: these setters reach the subcommands registered so far.
        // No @FILE expansion: an argument starting with '@' (a root name, a path) is itself.
        cmd.setExpandAtFiles(false);
        cmd.setOut(new PrintWriter(io.out(), true, StandardCharsets.UTF_8))
                .setErr(new PrintWriter(io.err(), true, StandardCharsets.UTF_8))
                .setExecutionExceptionHandler(new ErrorHandler())
                .setParameterExceptionHandler(ErrorHandler::usage);
        // --help and --version on every subcommand, including those defined in other modules' files.
        // Their --version prints castore's (without a version of their own it printed nothing, exit 0).
        cmd.getSubcommands().values().forEach(sub -> sub.getCommandSpec().mixinStandardHelpOptions(true)
                .version(cmd.getCommandSpec().version()));
        int exit;
        try {
            exit = cmd.execute(args);
        } catch (Error e) {
            // picocli hands only Exceptions to the handler; an Error (out of memory, no thread
            // to be had) rethrown on this thread gets the same one line and exit code.
            exit = ErrorHandler.report(e, cmd.getErr());
        } finally {
            io.out().flush();
            io.err().flush();
        }
        // PrintStream swallows write errors: a full disk or a closed pipe must not look like success.
        if (exit == ExitCodes.OK && io.out().checkError()) {
            IOException why = io.outFailure();
            if (why != null && "Broken pipe".equals(why.getMessage())) {
                // The reader stopped reading (castore roots | head): nothing to say, and the
                // status a process killed by SIGPIPE gives, as cat's would be (the JVM ignores SIGPIPE).
                return ExitCodes.BROKEN_PIPE;
            }
            io.err().println("castore: cannot write to standard output" + (why != null ? ": " + why.getMessage() : ""));
            return ExitCodes.IO;
        }
        return exit;
    }
}
