package castore.ingest;

import static castore.ingest.posix.Posix.AT_FDCWD;
import static castore.ingest.posix.Posix.O_CLOEXEC;
import static castore.ingest.posix.Posix.O_CREAT;
import static castore.ingest.posix.Posix.O_DIRECTORY;
import static castore.ingest.posix.Posix.O_EXCL;
import static castore.ingest.posix.Posix.O_NOFOLLOW;
import static castore.ingest.posix.Posix.O_RDONLY;
import static castore.ingest.posix.Posix.O_WRONLY;

import castore.ingest.posix.Display;
import castore.ingest.posix.Posix;
import castore.ingest.posix.PosixException;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import castore.service.DirectoryService;
import castore.service.NotFoundException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Writes a castore tree back to the filesystem: directories 0755, files 0644 (0755 when
 * executable), symlinks as symlinks, with names as raw bytes. Directories are created by one
 * walker thread depth-first; file contents are written by a pool of {@code threads} workers.
 * The destination must not exist. A failed export leaves the directories and files it finished,
 * never a file it did not finish: that one is removed, also when the JVM is stopped by a signal
 * (SIGINT, SIGTERM, SIGHUP) mid-export: a shutdown hook unlinks the files being written.
 *
 * <p>Files are written sparse unless asked not to: a 4 KiB block of zeros (at a multiple of 4 KiB
 * in the file) is not written but left as a hole, as unsquashfs does, so a disk image or a dataset
 * padded with zeros takes on disk only what is not zero. The bytes read back are the same.
 */
public final class Exporter {
    private static final int WRITE_BUFFER_SIZE = 1 << 20;
    /** Bytes of small files asked for at once. */
    static final long SMALL_GROUP_BYTES = 32 << 20;
    private static final int OPEN_DIRECTORY = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    private static final int CREATE_FILE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;

    /** The unit of holes: the page size and the block size of the common filesystems. */
    static final int HOLE_BLOCK = 4096;
    private static final MemorySegment ZEROS = Arena.global().allocate(HOLE_BLOCK);

    private static final ThreadLocal<MemorySegment> WRITE_BUFFER =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(WRITE_BUFFER_SIZE, 4096));

    private final BlobService blobs;
    private final DirectoryService directories;
    private final int threads;
    private final boolean sparse;

    private final LongAdder files = new LongAdder();
    private final LongAdder dirs = new LongAdder();
    private final LongAdder symlinks = new LongAdder();
    private final LongAdder bytesWritten = new LongAdder();
    private final Unfinished unfinished = new Unfinished();

    /** An exporter that writes files sparse (blocks of zeros left as holes). */
    public Exporter(BlobService blobs, DirectoryService directories, int threads) {
        this(blobs, directories, threads, true);
    }

    /** {@code sparse} false: every byte is written, blocks of zeros too (files fully allocated). */
    public Exporter(BlobService blobs, DirectoryService directories, int threads, boolean sparse) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be positive");
        }
        this.blobs = blobs;
        this.directories = directories;
        this.threads = threads;
        this.sparse = sparse;
    }

    public ExportStats stats() {
        return new ExportStats(files.sum(), dirs.sum(), symlinks.sum(), bytesWritten.sum());
    }

    /** Writes {@code node} at {@code dest} (raw path bytes), which must not exist yet. */
    public void export(Node node, byte[] dest) throws IOException {
        // A signal ends the JVM without unwinding the workers: the hook removes what they were writing.
        Thread hook = new Thread(unfinished::abandon, "castore-export-interrupted");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            exportNode(node, dest);
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs (or ran) now
            }
        }
    }

    /** What the shutdown hook does when a signal ends the JVM mid-export (for tests). */
    void abandonUnfinished() {
        unfinished.abandon();
    }

    private void exportNode(Node node, byte[] dest) throws IOException {
        switch (node) {
            case SymlinkNode s -> {
                Posix.symlinkat(s.target().toByteArray(), AT_FDCWD, dest, dest);
                symlinks.increment();
            }
            case FileNode f -> writeFile(AT_FDCWD, dest, f, dest);
            case DirectoryNode d -> exportDirectory(d, dest);
        }
    }

    /** A directory to create: its node, where, and the parent descriptor to create it in. */
    private record PendingDirectory(DirectoryNode node, TreeWork.DirFd parent, byte[] name, byte[] path) {
    }

    private void exportDirectory(DirectoryNode root, byte[] dest) throws IOException {
        try (TreeWork work = new TreeWork(threads, 256, "castore-export")) {
            ArrayDeque<PendingDirectory> stack = new ArrayDeque<>();
            stack.push(new PendingDirectory(root, null, dest, dest));
            try {
                while (!stack.isEmpty() && !work.failed()) {
                    create(stack.pop(), stack, work);
                }
            } catch (IOException | RuntimeException e) {
                work.fail(e);
            }
            work.finish();
        }
    }

    private void create(PendingDirectory pending, ArrayDeque<PendingDirectory> stack, TreeWork work) throws IOException {
        int parentFd = pending.parent == null ? AT_FDCWD : pending.parent.fd;
        TreeWork.DirFd fd;
        try {
            Posix.mkdirat(parentFd, pending.name, 0755, pending.path);
            int dirFd;
            try {
                dirFd = Posix.openat(parentFd, pending.name, OPEN_DIRECTORY, 0, pending.path);
            } catch (PosixException e) {
                if (e.errno() != Posix.EACCES) {
                    throw e;
                }
                // A umask that takes the owner's read bit (0477) left a directory we cannot
                // open: its mode first. Only then: fchmodat(AT_SYMLINK_NOFOLLOW) needs /proc
                // before glibc 2.39 and fails before 2.32.
                Posix.chmodNoFollow(parentFd, pending.name, 0755, pending.path);
                dirFd = Posix.openat(parentFd, pending.name, OPEN_DIRECTORY, 0, pending.path);
            }
            fd = work.directory(dirFd, pending.path);
            Posix.fchmod(dirFd, 0755, pending.path); // the exact mode, whatever the umask
        } finally {
            if (pending.parent != null) {
                pending.parent.release();
            }
        }
        try {
            Directory directory = fetch(pending.node.digest(), pending.path);
            SmallFiles small = new SmallFiles(fd, work);
            for (Map.Entry<Name, Node> e : directory.entries().entrySet()) {
                byte[] name = e.getKey().bytesUnsafe();
                byte[] path = Posix.child(pending.path, name);
                switch (e.getValue()) {
                    case DirectoryNode d -> stack.push(new PendingDirectory(d, fd.retain(), name, path));
                    case FileNode f when f.size() > 0 && f.size() <= BlobService.SMALL_BLOB_MAX -> small.add(name, f, path);
                    case FileNode f -> submitFile(fd, name, f, path, work);
                    case SymlinkNode s -> {
                        Posix.symlinkat(s.target().toByteArray(), fd.fd, name, path);
                        symlinks.increment();
                    }
                }
            }
            small.submit();
        } finally {
            fd.release();
        }
        dirs.increment();
    }

    private void submitFile(TreeWork.DirFd fd, byte[] name, FileNode f, byte[] path, TreeWork work) throws IOException {
        fd.retain();
        work.submit(() -> {
            try {
                writeFile(fd.fd, name, f, path);
            } finally {
                fd.release();
            }
        });
    }

    /** A small file of a directory, waiting for its group to be fetched. */
    private record SmallFile(byte[] name, FileNode node, byte[] path) {
    }

    /**
     * A directory's small files, asked for in groups (BlobService.fetchAhead) before they are
     * written: over a daemon, one request per group instead of one per file (an export of the
     * bench tree's 54,000 files made 54,000). A group is at most {@value #SMALL_GROUP_BYTES}
     * bytes, so a directory of a million files is not held in memory at once; the cache keeps
     * each group until its files are written. Nothing happens ahead for a local store.
     */
    private final class SmallFiles {
        private final TreeWork.DirFd fd;
        private final TreeWork work;
        private final List<SmallFile> group = new ArrayList<>();
        private long bytes;

        SmallFiles(TreeWork.DirFd fd, TreeWork work) {
            this.fd = fd;
            this.work = work;
        }

        void add(byte[] name, FileNode node, byte[] path) throws IOException {
            if (bytes + node.size() > SMALL_GROUP_BYTES) {
                submit();
            }
            group.add(new SmallFile(name, node, path));
            bytes += node.size();
        }

        void submit() throws IOException {
            if (group.isEmpty()) {
                return;
            }
            blobs.fetchAhead(group.stream().map(f -> new ChunkMeta(f.node().digest(), f.node().size())).toList());
            for (SmallFile f : group) {
                submitFile(fd, f.name(), f.node(), f.path(), work);
            }
            group.clear();
            bytes = 0;
        }
    }

    private Directory fetch(B3Digest digest, byte[] path) throws IOException {
        return directories.get(digest).orElseThrow(() ->
                new NotFoundException("directory " + digest + " (for " + Display.escape(path) + ") is not in the store"));
    }

    private void writeFile(int dirFd, byte[] name, FileNode node, byte[] path) throws IOException {
        int mode = node.executable() ? 0755 : 0644;
        BlobReader reader = null;
        if (node.size() > 0) {
            // With the node's size: a remote store's cache fetches a small blob in one Read,
            // where open(digest) asks for its chunk list first (two calls per file).
            reader = blobs.open(node.digest(), node.size()).orElseThrow(() ->
                    new NotFoundException("blob " + node.digest() + " (for " + Display.escape(path) + ") is not in the store"));
        }
        try {
            Unfinished.File file = unfinished.create(dirFd, name, mode, path);
            int fd = file.fd();
            boolean written = false;
            try {
                Posix.fchmod(fd, mode, path);
                if (reader != null) {
                    copy(reader, node, fd, path);
                }
                written = true;
            } finally {
                if (written) {
                    try {
                        Posix.closeWritten(fd, path); // a delayed write error fails the export
                    } catch (PosixException e) {
                        unfinished.remove(file);
                        throw e;
                    }
                    unfinished.finished(file);
                } else {
                    Posix.close(fd);
                    // We created it (O_EXCL) and did not finish it: a file of the right name
                    // and the wrong bytes must not be left for someone to take as exported.
                    unfinished.remove(file);
                }
            }
        } finally {
            if (reader != null) {
                reader.close();
            }
        }
        files.increment();
    }

    private void copy(BlobReader reader, FileNode node, int fd, byte[] path) throws IOException {
        if (reader.size() != node.size()) {
            throw new CorruptedDataException("blob " + node.digest() + " has " + reader.size() + " bytes but "
                    + Display.escape(path) + " should have " + node.size());
        }
        MemorySegment segment = WRITE_BUFFER.get();
        ByteBuffer buffer = segment.asByteBuffer();
        long position = 0;
        boolean holes = false;
        while (position < node.size()) {
            // The buffer filled whole (a chunked reader may stop at a chunk's end), so blocks of
            // zeros stay aligned in the file and none is cut in two between writes.
            buffer.clear();
            int n = 0;
            while (buffer.hasRemaining() && position + n < node.size()) {
                int read = reader.read(position + n, buffer);
                if (read <= 0) {
                    throw new CorruptedDataException("blob " + node.digest() + " (for " + Display.escape(path) + ") ended at byte "
                            + (position + n) + " of " + node.size());
                }
                n += read;
            }
            if (sparse) {
                holes |= writeSparse(fd, segment, n, position, path);
            } else {
                Posix.pwriteFully(fd, segment, 0, n, position, path);
            }
            position += n;
            bytesWritten.add(n);
        }
        if (holes) {
            Posix.ftruncate(fd, node.size(), path); // a hole at the end is not made by skipping it
        }
    }

    /**
     * Writes the first {@code n} bytes of {@code segment} at {@code position} of the file, leaving
     * out every whole {@link #HOLE_BLOCK} of zeros that starts at a multiple of it in the file.
     * Returns whether it left any out.
     */
    private static boolean writeSparse(int fd, MemorySegment segment, int n, long position, byte[] path) throws IOException {
        boolean skipped = false;
        int runStart = 0; // start of the bytes not yet written
        // The first block boundary of the file within the buffer.
        int block = (int) ((HOLE_BLOCK - position % HOLE_BLOCK) % HOLE_BLOCK);
        for (; block + HOLE_BLOCK <= n; block += HOLE_BLOCK) {
            if (segment.asSlice(block, HOLE_BLOCK).mismatch(ZEROS) != -1) {
                continue;
            }
            if (block > runStart) {
                Posix.pwriteFully(fd, segment, runStart, block - runStart, position + runStart, path);
            }
            runStart = block + HOLE_BLOCK;
            skipped = true;
        }
        if (n > runStart) {
            Posix.pwriteFully(fd, segment, runStart, n - runStart, position + runStart, path);
        }
        return skipped;
    }

    /**
     * The files being written, so that a shutdown hook can unlink them: SIGINT (Ctrl-C) used to
     * leave the file being written, of the right name and size so far, looking exported
     * ({@code ExporterTest.filesBeingWrittenWhenTheExportIsStoppedAreRemoved}). Workers create
     * and drop their files under the read lock, the hook unlinks under the write lock, so a file
     * is never created after the hook ran nor missed by it; a directory descriptor stays open
     * while a file in it is registered (its worker holds it).
     */
    private static final class Unfinished {
        /** A file created for writing: its descriptor, and where to unlink it. */
        record File(int fd, int dirFd, byte[] name, byte[] path) {
        }

        private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
        private final Set<File> files = ConcurrentHashMap.newKeySet();
        private boolean abandoned;

        File create(int dirFd, byte[] name, int mode, byte[] path) throws IOException {
            lock.readLock().lock();
            try {
                if (abandoned) {
                    throw new IOException("the export was stopped before " + Display.escape(path) + " was written");
                }
                File file = new File(Posix.openat(dirFd, name, CREATE_FILE, mode, path), dirFd, name, path);
                files.add(file);
                return file;
            } finally {
                lock.readLock().unlock();
            }
        }

        /** Written and closed: no longer removed. */
        void finished(File file) {
            lock.readLock().lock(); // not while the hook unlinks: its directory is closed after this
            try {
                files.remove(file);
            } finally {
                lock.readLock().unlock();
            }
        }

        /** Not finished: unlinked, unless the hook did it already. */
        void remove(File file) {
            lock.readLock().lock();
            try {
                if (files.remove(file)) {
                    Posix.unlinkFile(file.dirFd(), file.name(), file.path());
                }
            } finally {
                lock.readLock().unlock();
            }
        }

        void abandon() {
            lock.writeLock().lock();
            try {
                abandoned = true;
                for (File file : files) {
                    Posix.unlinkFile(file.dirFd(), file.name(), file.path());
                }
                files.clear();
            } finally {
                lock.writeLock().unlock();
            }
        }
    }
}
