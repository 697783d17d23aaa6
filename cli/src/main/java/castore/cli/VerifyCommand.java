package castore.cli;

import castore.fs.PlainCopies;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.FileNode;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.ChunkMeta;
import castore.service.Store;
import castore.service.StoreMaintenance;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "verify", description = {
    "Check the store: every Directory closure reachable from every root is complete and consistent, every blob "
            + "it names is present with the right size and chunk list, and all stored data re-hashes to its digest.",
    "With --plain-copies DIR, check the plain copies a mount made with --passthrough DIR instead: each must "
            + "re-hash to the digest it is named after; a bad one is deleted (a mount makes it again from the store).",
    "Prints one line per problem on stdout and a summary on stderr; exits 1 if there is any problem.",
})
final class VerifyCommand implements java.util.concurrent.Callable<Integer> {
    @ParentCommand
    Main main;

    @Mixin
    StoreMixin store;

    /** Blobs checked at once by default over a store read through the network: each read waits on a round trip. */
    static final int REMOTE_THREADS = 8;

    @Option(names = "--threads", paramLabel = "N", description = "Blobs checked in parallel (default: the number of CPUs; "
            + "at least " + REMOTE_THREADS + " for a store reached through the network, such as a daemon or S3).")
    Integer threads;

    @Option(names = "--plain-copies", paramLabel = "DIR",
            description = "Check the plain copies in DIR (see mount --passthrough) instead of the store.")
    Path plainCopies;

    /**
     * Small blobs re-hashed through a store without its own check (a daemon) are asked for in
     * groups of at most {@value #GROUP_BLOBS} blobs and this many bytes
     * ({@link BlobService#readBlobs}: one ReadBlobs call over a castore daemon) instead of a
     * Stat and a Read each.
     */
    static final long GROUP_BYTES = 4L << 20;
    static final int GROUP_BLOBS = 256;

    private final AtomicLong problems = new AtomicLong();
    private final LongAdder blobBytes = new LongAdder();

    private void report(String problem) {
        problems.incrementAndGet();
        synchronized (this) {
            main.io().out().println(problem);
            main.io().out().flush();
        }
    }

    @Override
    public Integer call() throws Exception {
        if (threads != null && Threads.problem(threads) != null) {
            throw new CliException(ExitCodes.USAGE, Threads.problem(threads));
        }
        long start = System.nanoTime();
        if (plainCopies != null) {
            Io.requireUtf8("--plain-copies", plainCopies.toString());
            return verifyPlainCopies(start);
        }
        Reachability reach = new Reachability();
        long stored = 0;
        try (Store s = store.openReadOnly()) {
            Optional<StoreMaintenance> maintenance = s.maintenance();
            // The backend re-hashes every stored chunk, blob and Directory, reachable or not.
            StoreMaintenance.Verification verification = maintenance.isPresent() ? maintenance.get().verifyStored(this::report)
                    : new StoreMaintenance.Verification(0, StoreMaintenance.SoundBlobs.NONE);
            stored = verification.objectsChecked();
            StoreMaintenance.SoundBlobs sound = verification.soundBlobs();
            // Without it, re-hash what the roots reach, through the verifying reader.
            boolean rehash = maintenance.isEmpty();
            boolean remote = store.anyRemote();
            int parallel = threads != null ? threads
                    : rehash || remote ? Math.max(REMOTE_THREADS, Threads.byDefault()) : Threads.byDefault();
            int walkParallelism = remote ? Reachability.REMOTE_FETCHES : 1;
            ExecutorService pool = Executors.newFixedThreadPool(parallel, Thread.ofPlatform().daemon().factory());
            Semaphore inFlight = new Semaphore(4 * parallel);
            List<Reached> group = new ArrayList<>();
            long[] groupBytes = {0};
            try {
                reach.walkAll(s, walkParallelism, new Reachability.Visitor() {
                    @Override
                    public void file(FileNode file, String where) throws IOException {
                        if (sound.size(file.digest()) == file.size()) {
                            blobBytes.add(file.size()); // re-hashed by the backend just now
                            return;
                        }
                        if (rehash && file.size() > 0 && file.size() <= BlobService.SMALL_BLOB_MAX) {
                            if (groupBytes[0] + file.size() > GROUP_BYTES || group.size() == GROUP_BLOBS) {
                                submitGroup(s, List.copyOf(group), pool, inFlight);
                                group.clear();
                                groupBytes[0] = 0;
                            }
                            group.add(new Reached(file, where));
                            groupBytes[0] += file.size();
                            return;
                        }
                        inFlight.acquireUninterruptibly();
                        pool.execute(() -> {
                            try {
                                checkBlob(s, file, where, rehash);
                            } catch (IOException | RuntimeException e) {
                                report("blob " + file.digest() + " (" + where + "): " + ErrorHandler.message(e));
                            } finally {
                                inFlight.release();
                            }
                        });
                    }

                    @Override
                    public void problem(String message) {
                        report(message);
                    }
                });
                submitGroup(s, List.copyOf(group), pool, inFlight);
            } finally {
                pool.shutdown();
                pool.awaitTermination(Long.MAX_VALUE, TimeUnit.DAYS);
            }
        }
        main.io().err().printf(Locale.ROOT, "verified %s: %s, %s (%s)%s; %s, in %.2f s%n",
                Nodes.count(reach.roots(), "root"), Nodes.count(reach.directories().size(), "directory"),
                Nodes.count(reach.blobs().size(), "blob"), Nodes.bytes(blobBytes.sum()),
                stored > 0 ? "; " + Nodes.count(stored, "stored object") + " re-hashed" : "",
                Nodes.count(problems.get(), "problem"), (System.nanoTime() - start) / 1e9);
        return problems.get() == 0 ? ExitCodes.OK : ExitCodes.PROBLEMS;
    }

    // Copies are named by digest, so checking them needs no store; a mount may be using DIR meanwhile.
    private int verifyPlainCopies(long start) throws IOException {
        if (!Files.isDirectory(plainCopies)) {
            throw new CliException(ExitCodes.USAGE, "--plain-copies: no such directory: " + plainCopies);
        }
        if (!PlainCopies.isCopiesDirectory(plainCopies)) { // as mount --passthrough says of it
            throw new CliException(ExitCodes.IO, "--plain-copies: " + plainCopies + " is not a castore plain-copies directory");
        }
        PlainCopies.Verification v = PlainCopies.verify(plainCopies, threads != null ? threads : Threads.byDefault(), this::report);
        main.io().err().printf(Locale.ROOT, "verified %s (%s); %s deleted, in %.2f s%n",
                Nodes.count(v.copies(), "plain copy"), Nodes.bytes(v.bytes()), Nodes.count(v.deleted(), "bad copy"),
                (System.nanoTime() - start) / 1e9);
        return problems.get() == 0 ? ExitCodes.OK : ExitCodes.PROBLEMS;
    }

    /** A blob reached by {@code where}, waiting in a group. */
    private record Reached(FileNode file, String where) {
    }

    private void submitGroup(Store s, List<Reached> group, ExecutorService pool, Semaphore inFlight) {
        if (group.isEmpty()) {
            return;
        }
        inFlight.acquireUninterruptibly();
        pool.execute(() -> {
            try {
                checkGroup(s, group);
            } finally {
                inFlight.release();
            }
        });
    }

    /**
     * Small blobs read in one go and re-hashed here. One the store leaves out (absent, failing
     * its check, or one it cannot read in a group), or whose bytes do not re-hash to its digest,
     * is checked on its own, which reports why.
     */
    private void checkGroup(Store s, List<Reached> group) {
        Map<B3Digest, byte[]> read;
        try {
            read = s.blobs().readBlobs(group.stream().map(r -> new ChunkMeta(r.file().digest(), r.file().size())).toList());
        } catch (IOException | RuntimeException e) {
            read = Map.of(); // each is checked on its own, and reports what fails
        }
        for (Reached r : group) {
            byte[] data = read.get(r.file().digest());
            if (data != null && data.length == r.file().size() && Blake3.digest(data).equals(r.file().digest())) {
                blobBytes.add(data.length);
                continue;
            }
            try {
                checkBlob(s, r.file(), r.where(), true);
            } catch (IOException | RuntimeException e) {
                report("blob " + r.file().digest() + " (" + r.where() + "): " + ErrorHandler.message(e));
            }
        }
    }

    private void checkBlob(Store s, FileNode file, String where, boolean rehash) throws IOException {
        Optional<List<ChunkMeta>> chunks = s.blobs().chunks(file.digest());
        if (chunks.isEmpty()) {
            if (file.size() > 0 || !s.blobs().has(file.digest())) {
                report("blob " + file.digest() + " is missing (" + where + ")");
            }
            return;
        }
        long sum = chunks.get().stream().mapToLong(ChunkMeta::size).sum();
        if (sum != file.size()) {
            report("blob " + file.digest() + " has chunks adding up to " + sum + " bytes but the file is " + file.size()
                    + " bytes (" + where + ")");
            return;
        }
        blobBytes.add(file.size());
        if (rehash) {
            B3Digest actual = rehash(s, file);
            if (!actual.equals(file.digest())) {
                report("blob " + file.digest() + " re-hashes to " + actual + " (" + where + ")");
            }
        }
    }

    /**
     * Each checking thread's read buffer: one allocated per blob cost a zeroed 1 MiB and its
     * mapping for every file, most of them a few KiB (a verify over a daemon spent 4 s of system
     * CPU on 6,766 blobs).
     */
    private static final ThreadLocal<ByteBuffer> READ_BUFFER = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(1 << 20));

    private static B3Digest rehash(Store s, FileNode file) throws IOException {
        Blake3.Hasher hasher = Blake3.newHasher();
        try (BlobReader reader = s.blobs().open(file.digest())
                .orElseThrow(() -> new castore.service.NotFoundException("missing"))) {
            ByteBuffer buffer = READ_BUFFER.get();
            long position = 0;
            while (true) {
                buffer.clear();
                int n = reader.read(position, buffer);
                if (n <= 0) {
                    break;
                }
                buffer.flip();
                hasher.update(buffer);
                position += n;
            }
        }
        return hasher.digest();
    }
}
