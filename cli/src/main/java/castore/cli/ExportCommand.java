package castore.cli;

import castore.ingest.ExportStats;
import castore.ingest.Exporter;
import castore.ingest.posix.Display;
import castore.ingest.posix.Posix;
import castore.ingest.posix.PosixException;
import castore.model.DirectoryNode;
import castore.model.Node;
import castore.service.Store;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "export", sortOptions = false,
        description = "Write a tree (or a file or symlink) from the store to DEST, which must not exist: "
                + "directories 0755, files 0644 or 0755 when executable, symlinks as symlinks.")
final class ExportCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Mixin
    StoreMixin store;

    @Option(names = {"-q", "--quiet"}, description = "No summary on stderr.")
    boolean quiet;

    @Option(names = "--threads", paramLabel = "N", description = "Files written in parallel (default: the number of CPUs).")
    int threads = Threads.byDefault();

    @Option(names = "--no-sparse", description = "Write every byte: blocks of zeros too, not holes (files fully allocated).")
    boolean noSparse;

    @Parameters(index = "0", paramLabel = "ROOT[/PATH]", description = "What to export.")
    String source;

    @Parameters(index = "1", paramLabel = "DEST", description = "Where to write it (must not exist; its parent must).")
    String destination;

    @Override
    public Integer call() throws Exception {
        Io io = main.io();
        TreePath path = TreePath.parse(io.bytes(source));
        byte[] dest = io.bytes(destination);
        if (Threads.problem(threads) != null) {
            throw new CliException(ExitCodes.USAGE, Threads.problem(threads));
        }
        if (exists(dest)) {
            throw new CliException(ExitCodes.INVALID, "destination exists: " + Display.escape(dest));
        }
        long start = System.nanoTime();
        try (Store s = store.openReadOnly()) {
            Node node = path.resolve(s);
            if (!(node instanceof DirectoryNode) && dest.length > 0 && dest[dest.length - 1] == '/') {
                // The kernel would say "Is a directory" or "No such file or directory" of a path that does not exist.
                throw new CliException(ExitCodes.INVALID, "cannot export the " + Nodes.kind(node) + " " + path + " to "
                        + Display.escape(dest) + ": a path ending in '/' names a directory");
            }
            Exporter exporter = new Exporter(s.blobs(), s.directories(), threads, !noSparse);
            exporter.export(node, dest);
            if (!quiet) {
                ExportStats st = exporter.stats();
                io.err().printf(Locale.ROOT, "exported %s, %s, %s: %s in %.2f s%n", Nodes.count(st.files(), "file"),
                        Nodes.count(st.directories(), "directory"), Nodes.count(st.symlinks(), "symlink"),
                        Nodes.bytes(st.bytesWritten()), (System.nanoTime() - start) / 1e9);
            }
        }
        return ExitCodes.OK;
    }

    private static boolean exists(byte[] path) throws PosixException {
        try {
            Posix.lstatat(Posix.AT_FDCWD, path, path);
            return true;
        } catch (PosixException e) {
            if (e.errno() == Posix.ENOENT) {
                return false;
            }
            throw e;
        }
    }
}
