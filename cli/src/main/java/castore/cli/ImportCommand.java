package castore.cli;

import castore.ingest.ImportStats;
import castore.ingest.Importer;
import castore.ingest.posix.Display;
import castore.ingest.posix.Posix;
import castore.ingest.posix.PosixException;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.Store;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "import", sortOptions = false,
        description = {
            "Import directories, files or symlinks and name each as a root.",
            "Prints NAME<TAB>DIGEST per root on stdout (for a symlink, its target). A symlink given as PATH is stored as a "
                    + "symlink, never followed. Importing under an existing name re-points it.",
        })
final class ImportCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Mixin
    StoreMixin store;

    @Option(names = "--name", paramLabel = "NAME", description = "Root name (default: the basename of PATH); only with a single PATH.")
    String name;

    @Option(names = "--progress", description = "Show progress on stderr even when it is not a terminal.")
    boolean progress;

    @Option(names = {"-q", "--quiet"}, description = "No progress and no summary on stderr.")
    boolean quiet;

    @Option(names = "--threads", paramLabel = "N", description = "Files read and hashed in parallel (default: the number of CPUs).")
    int threads = Threads.byDefault();

    @Option(names = "--skip-special", description = "Leave devices, fifos and sockets out of the directories imported "
            + "(named on stderr) instead of failing: a store holds only files, directories and symlinks.")
    boolean skipSpecial;

    @Parameters(arity = "1..*", paramLabel = "PATH", description = "Directory, file or symlink to import.")
    List<String> paths;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Io io = main.io();
        if (name != null && paths.size() > 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--name goes with a single PATH");
        }
        if (Threads.problem(threads) != null) {
            throw new CommandLine.ParameterException(spec.commandLine(), Threads.problem(threads));
        }
        List<byte[]> pathBytes = paths.stream().map(io::bytes).toList();
        List<Name> names = new ArrayList<>();
        Map<Name, String> seen = new HashMap<>();
        for (int i = 0; i < paths.size(); i++) {
            Name n = name != null ? Name.of(io.bytes(name)) : defaultName(pathBytes.get(i));
            String escaped = Display.escape(pathBytes.get(i));
            String other = seen.put(n, escaped);
            if (other != null) {
                throw new InvalidDataException("'" + other + "' and '" + escaped + "' would both be named '"
                        + Display.escape(n.bytesUnsafe()) + "': import them one at a time with --name");
            }
            names.add(n);
        }

        // Before the store is opened: opening a local store that is absent creates it.
        for (byte[] path : pathBytes) {
            Importer.checkImportable(path);
        }
        long start = System.nanoTime();
        try (Store s = store.open()) {
            // The store's own directories (a local store, a cache) are left out of the trees
            // imported: importing ~ with the default store under ~/.local/share read its packs as
            // they were written, and failed.
            List<byte[]> excluded = new ArrayList<>();
            Importer importer = new Importer(s.blobs(), s.directories(), threads)
                    .excluding(s.dataDirectories().stream().map(p -> io.bytes(p.toString())).toList(), excluded::add);
            List<String> specialFiles = new ArrayList<>();
            if (skipSpecial) {
                importer.skippingSpecialFiles((path, kind) -> specialFiles.add(Display.escape(path) + ": a " + kind));
            }
            List<Node> nodes = new ArrayList<>();
            boolean terminal = !quiet && io.errIsTerminal();
            try (ProgressLine line = !quiet && (progress || terminal)
                    ? ProgressLine.forImport(io.err(), terminal, importer::stats, pathBytes) : null) {
                for (byte[] path : pathBytes) {
                    nodes.add(importer.importPath(path));
                }
            }
            for (byte[] path : excluded) {
                io.err().println("castore: left out " + Display.escape(path) + ": the store keeps its data there");
            }
            reportSpecialFiles(io, specialFiles);
            Importer.MtimeBytecode bytecode = importer.mtimeBytecode();
            if (bytecode != null) {
                io.err().println("castore: warning: " + Nodes.count(bytecode.count(), "Python bytecode file") + " (.pyc, e.g. "
                        + Display.escape(bytecode.example()) + (bytecode.count() == 1 ? ") depends on its source's modification time"
                        : ") depend on their sources' modification times") + "; a mount shows "
                        + "every time as the epoch, so Python will compile those modules again at each start. Compile them "
                        + "with 'python3 -m compileall -f --invalidation-mode unchecked-hash' before importing (README, \"Times\").");
            }
            // Names are set only once everything is stored: a failed import changes no root.
            for (int i = 0; i < nodes.size(); i++) {
                s.roots().put(names.get(i), nodes.get(i));
            }
            for (int i = 0; i < nodes.size(); i++) {
                Node node = nodes.get(i);
                String ref = node instanceof SymlinkNode sym ? Display.escape(sym.target().toByteArray()) : Nodes.reference(node);
                io.out().println(Display.escape(names.get(i).bytesUnsafe()) + "\t" + ref);
            }
            io.out().flush();
            if (!quiet) {
                io.err().println(summary(importer.stats(), System.nanoTime() - start));
            }
        }
        return ExitCodes.OK;
    }

    /** Special files named one per line on stderr (in path order), up to {@value #SPECIAL_FILES_NAMED}, then how many more. */
    private static final int SPECIAL_FILES_NAMED = 20;

    private static void reportSpecialFiles(Io io, List<String> specialFiles) {
        List<String> sorted = specialFiles.stream().sorted().toList();
        for (String file : sorted.subList(0, Math.min(sorted.size(), SPECIAL_FILES_NAMED))) {
            io.err().println("castore: left out " + file);
        }
        if (specialFiles.size() > SPECIAL_FILES_NAMED) {
            io.err().println("castore: left out " + (specialFiles.size() - SPECIAL_FILES_NAMED) + " more special files ("
                    + specialFiles.size() + " devices, fifos and sockets in all)");
        }
    }

    static String summary(ImportStats stats, long nanos) {
        double seconds = nanos / 1e9;
        return String.format(Locale.ROOT, "imported %s, %s, %s: %s read%s, %s new, in %.2f s (%s/s)",
                Nodes.count(stats.files(), "file"), Nodes.count(stats.directories(), "directory"),
                Nodes.count(stats.symlinks(), "symlink"), Nodes.bytes(stats.bytesRead()),
                stats.holeBytes() == 0 ? "" : " (" + Nodes.bytes(stats.holeBytes()) + " of it holes, not read)",
                Nodes.bytes(stats.bytesStored()), seconds, Nodes.bytes((long) (stats.bytesRead() / Math.max(seconds, 1e-3))));
    }

    /** The absolute path of the directory {@code path} names, as the kernel has it (/proc/self/fd). */
    private static byte[] directoryPath(byte[] path) throws PosixException {
        int fd = Posix.openat(Posix.AT_FDCWD, path, Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_CLOEXEC, 0, path);
        try {
            byte[] link = ("/proc/self/fd/" + fd).getBytes(StandardCharsets.US_ASCII);
            try {
                return Posix.readlinkat(Posix.AT_FDCWD, link, path);
            } catch (PosixException e) { // no /proc: a chroot, a minimal container
                throw new InvalidDataException("cannot derive a root name from '" + Display.escape(path) + "': its path is read from"
                        + " /proc/self/fd, which cannot be read (" + Posix.strerror(e.errno()) + "): use --name");
            }
        } finally {
            Posix.close(fd);
        }
    }

    /** The last component of PATH, after trailing slashes; "." and ".." are resolved first. */
    static Name defaultName(byte[] path) throws PosixException {
        int end = path.length;
        while (end > 1 && path[end - 1] == '/') {
            end--;
        }
        int start = end;
        while (start > 0 && path[start - 1] != '/') {
            start--;
        }
        byte[] last = Arrays.copyOfRange(path, start, end);
        String asText = new String(last, StandardCharsets.UTF_8);
        if (asText.equals(".") || asText.equals("..")) {
            // The name of the directory it is, in its own bytes (a decoded String would turn
            // non-UTF-8 bytes into U+FFFD, and two such directories into one root name).
            byte[] resolved = directoryPath(path);
            int from = resolved.length;
            while (from > 0 && resolved[from - 1] != '/') {
                from--;
            }
            if (from == resolved.length) {
                throw new InvalidDataException("cannot derive a root name from '" + Display.escape(path) + "': use --name");
            }
            return Name.of(Arrays.copyOfRange(resolved, from, resolved.length));
        }
        if (last.length == 0 || asText.equals("/")) {
            throw new InvalidDataException("cannot derive a root name from '" + Display.escape(path) + "': use --name");
        }
        return Name.of(last);
    }
}
