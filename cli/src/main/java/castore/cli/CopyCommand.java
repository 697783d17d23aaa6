package castore.cli;

import castore.ingest.CopyStats;
import castore.ingest.Copier;
import castore.ingest.posix.Display;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "copy", sortOptions = false,
        description = {
            "Copy roots (or what ROOT/PATH names) from the store to the one --to names, sending only what it lacks, "
                    + "and name each there.",
            "Prints NAME<TAB>DIGEST per root on stdout (for a symlink, its target). Copying under an existing name re-points "
                    + "it; names are set only once everything is copied.",
        })
final class CopyCommand implements Callable<Integer> {
    /** Blob transfers in flight by default: each is a round trip when either store is remote. */
    static final int DEFAULT_THREADS = 8;
    /** Each transfer holds up to 9 MiB (a batch of small blobs, a copy buffer). */
    static final int MAX_THREADS = 64;

    @ParentCommand
    Main main;

    @Mixin
    StoreMixin store;

    @Option(names = "--to", required = true, paramLabel = "ADDR",
            description = "The destination store's address (the forms --store takes); a local store is created if absent.")
    String to;

    @Option(names = "--name", paramLabel = "NAME", description = "Root name in the destination (default: the last name of ROOT[/PATH]); "
            + "only with a single ROOT[/PATH].")
    String name;

    @Option(names = "--all", description = "Copy every root of the store, under its own name.")
    boolean all;

    @Option(names = "--progress", description = "Show progress on stderr even when it is not a terminal.")
    boolean progress;

    @Option(names = {"-q", "--quiet"}, description = "No progress and no summary on stderr.")
    boolean quiet;

    @Option(names = "--threads", paramLabel = "N", description = "Blobs copied in parallel (default: " + DEFAULT_THREADS + ").")
    int threads = DEFAULT_THREADS;

    @Parameters(arity = "0..*", paramLabel = "ROOT[/PATH]", description = "What to copy.")
    List<String> sources = List.of();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** A tree to copy and the root name it gets in the destination. */
    private record Copy(Name name, String display, TreePath path) {
    }

    @Override
    public Integer call() throws Exception {
        Io io = main.io();
        if (all == !sources.isEmpty()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "give ROOT[/PATH] arguments or --all, not both or neither");
        }
        if (name != null && sources.size() != 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--name goes with a single ROOT[/PATH]");
        }
        if (Threads.problem(threads, MAX_THREADS) != null) {
            throw new CommandLine.ParameterException(spec.commandLine(), Threads.problem(threads, MAX_THREADS));
        }
        Io.requireUtf8("--to", to);
        List<Copy> copies = new ArrayList<>();
        Map<Name, String> seen = new HashMap<>();
        for (String source : sources) {
            TreePath path = TreePath.parse(io.bytes(source));
            Name as = name != null ? Name.of(io.bytes(name)) : path.lastName();
            String other = seen.put(as, path.toString());
            if (other != null) {
                throw new InvalidDataException("'" + other + "' and '" + path + "' would both be named '"
                        + Display.escape(as.bytesUnsafe()) + "': copy them one at a time with --name");
            }
            copies.add(new Copy(as, path.toString(), path));
        }
        if (sameStore(Stores.parseAddress(store.storeAddress()), Stores.parseAddress(to))) {
            throw new InvalidDataException("--to names the store copied from (" + to + ")");
        }
        long start = System.nanoTime();
        try (Store from = store.openReadOnly()) {
            List<Node> nodes = new ArrayList<>();
            if (all) {
                try (Stream<Node.NamedNode> roots = from.roots().list()) {
                    roots.forEach(root -> {
                        copies.add(new Copy(root.name(), Display.escape(root.name().bytesUnsafe()), null));
                        nodes.add(root.node());
                    });
                }
            } else {
                for (Copy copy : copies) {
                    nodes.add(copy.path().resolve(from));
                }
            }
            // Opened once the sources are found: a local destination that is absent is created.
            try (Store dest = Stores.open(to, store.options(StoreOptions.DEFAULT))) {
                copy(io, from, dest, copies, nodes, start);
            }
        }
        return ExitCodes.OK;
    }

    /** Copies every tree, then names them all in the destination, then says what it did. */
    private void copy(Io io, Store from, Store dest, List<Copy> copies, List<Node> nodes, long start) throws IOException {
        Copier copier = new Copier(from.blobs(), from.directories(), dest.blobs(), dest.directories(), threads);
        boolean terminal = !quiet && io.errIsTerminal();
        try (ProgressLine line = !quiet && (progress || terminal) ? ProgressLine.forCopy(io.err(), terminal, copier::stats) : null) {
            for (int i = 0; i < copies.size(); i++) {
                copier.copy(nodes.get(i), copies.get(i).display());
            }
        }
        // Names are set only once everything is stored: a failed copy names nothing.
        for (int i = 0; i < copies.size(); i++) {
            dest.roots().put(copies.get(i).name(), nodes.get(i));
        }
        for (int i = 0; i < copies.size(); i++) {
            Node node = nodes.get(i);
            String ref = node instanceof SymlinkNode sym ? Display.escape(sym.target().toByteArray()) : Nodes.reference(node);
            io.out().println(Display.escape(copies.get(i).name().bytesUnsafe()) + "\t" + ref);
        }
        io.out().flush();
        if (!quiet) {
            io.err().println(summary(copies.size(), copier.stats(), System.nanoTime() - start));
        }
    }

    static String summary(int roots, CopyStats stats, long nanos) {
        return String.format(Locale.ROOT, "copied %s: %s sent (of %d reached), %s sent (of %d): %s, %s new, in %.2f s",
                Nodes.count(roots, "root"), Nodes.count(stats.directoriesSent(), "directory"), stats.directories(),
                Nodes.count(stats.blobsSent(), "blob"), stats.blobs(), Nodes.bytes(stats.bytesSent()), Nodes.bytes(stats.bytesStored()),
                nanos / 1e9);
    }

    /** Whether two addresses name the same store: equal, or the same local directory written two ways. */
    static boolean sameStore(URI a, URI b) {
        if (a.getScheme() != null && a.getScheme().equals("memory")) {
            return false; // every open of memory:// is a new store
        }
        if (isLocal(a) && isLocal(b)) {
            return Path.of(a.getPath()).normalize().equals(Path.of(b.getPath()).normalize());
        }
        return a.equals(b);
    }

    private static boolean isLocal(URI address) {
        return "file".equals(address.getScheme()) || "local".equals(address.getScheme());
    }
}
