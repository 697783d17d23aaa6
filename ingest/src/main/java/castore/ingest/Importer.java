package castore.ingest;

import static castore.ingest.posix.Posix.AT_FDCWD;
import static castore.ingest.posix.Posix.O_CLOEXEC;
import static castore.ingest.posix.Posix.O_DIRECTORY;
import static castore.ingest.posix.Posix.O_NOCTTY;
import static castore.ingest.posix.Posix.O_NOFOLLOW;
import static castore.ingest.posix.Posix.O_NONBLOCK;
import static castore.ingest.posix.Posix.O_RDONLY;

import castore.ingest.posix.DirectoryReader;
import castore.ingest.posix.Display;
import castore.ingest.posix.Posix;
import castore.ingest.posix.Posix.Stat;
import castore.ingest.posix.PosixException;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ClosurePutter;
import castore.service.DirectoryService;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;

/**
 * Ingests a file, directory or symlink into a store.
 *
 * <p>One walker thread lists directories depth-first with raw byte names (so every name
 * round-trips, UTF-8 or not) and hands each regular file to a pool of {@code threads} workers
 * that read, chunk and hash it through the store's {@link BlobWriter}. A directory is finished,
 * hashed and put as soon as its last child is known, by whichever thread completes that child:
 * so directories are put leaves first, and only the directories on the walker's path and those
 * with files in flight are held in memory, never the whole tree. Files go to the workers in
 * batches of up to {@value #FILES_PER_TASK} from one directory (fewer with many threads, so
 * that every thread has a batch); at most about {@code maxFilesInFlight} files are queued or
 * being read at once.
 *
 * <p>Symlinks are stored as symlinks, never followed (also when given as the path to import).
 * Devices, fifos and sockets fail the import with a {@link SpecialFileException} naming them,
 * or are left out of their directories ({@link #skippingSpecialFiles}).
 * A failed import stores no root: at worst it leaves unreferenced blobs and directories, which
 * {@code gc} removes.
 */
public final class Importer {
    /** Files up to this size are read in one call; larger ones in pieces of this size. */
    static final int READ_BUFFER_SIZE = 4 << 20;
    /**
     * The most the workers' read buffers take in all: past 128 threads each gets less, at least
     * {@link #MIN_READ_BUFFER_SIZE}. Before session 38, 1024 threads (the most --threads allows,
     * for a remote store's round trips) held 4 GiB of native memory.
     */
    static final long READ_BUFFERS_TOTAL = 512L << 20;
    static final int MIN_READ_BUFFER_SIZE = 256 << 10;
    /**
     * How far ahead of the piece being hashed a big file is read (asynchronously, by the kernel).
     * By WILLNEED rather than the kernel's own sequential read-ahead: WILLNEED fills the page
     * cache with 4 KiB pages, read-ahead with large folios, and in the VM this was measured on,
     * reading 2 GiB cold through large folios cost 1.3-4.6x the CPU (the copy out of them was
     * ten times slower, likely memory the balloon's free-page reporting had handed back to the
     * host; docs/performance.md, "Import").
     */
    static final long READ_AHEAD = 16 << 20;
    /**
     * Files of a batch a worker keeps open ahead of the one it hashes, with the kernel already
     * reading their first read buffer's worth (all of a small file). Only the first
     * piece: asking for {@link #READ_AHEAD} of each put 64 MiB of later files in the disk queue
     * ahead of the next pieces of the two big files being hashed (cold big files 2.48 -> 2.39 s
     * mean of eight interleaved rounds; docs/performance.md).
     */
    static final int OPEN_AHEAD = 4;
    /**
     * A file that takes at least this much less on disk than its size is read around its holes
     * (lseek SEEK_DATA / SEEK_HOLE), its holes taken as the zeros they read as: reading a hole
     * makes the kernel allocate and zero page-cache pages for it: 2.5-4.9 s of system time for a
     * 5 GiB file holding 17 bytes of data (docs/performance.md, "Import", "Session 42").
     */
    static final long HOLES_WORTH_SKIPPING = 1 << 20;
    /** Files of one directory read by one task (fewer at the end of a directory). */
    static final int FILES_PER_TASK = 16;
    /** A worker that meets a file this big hands the rest of its batch to another worker. */
    static final long SPLIT_SIZE = 1 << 20;

    private static final int OPEN_DIRECTORY = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    // O_NONBLOCK: a fifo swapped in after listing must not block the open.
    private static final int OPEN_FILE = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

    private final BlobService blobs;
    private final DirectoryService directories;
    private final int threads;
    private final int filesPerTask;
    private final int maxTasksInFlight;

    private final LongAdder files = new LongAdder();
    private final LongAdder dirs = new LongAdder();
    private final LongAdder symlinks = new LongAdder();
    private final LongAdder bytesRead = new LongAdder();
    private final LongAdder bytesStored = new LongAdder();
    private final LongAdder mtimeBytecode = new LongAdder();
    /** Bytes of holes taken as zeros without reading them. */
    private final LongAdder holeBytes = new LongAdder();
    private final java.util.concurrent.atomic.AtomicReference<byte[]> mtimeBytecodeExample = new java.util.concurrent.atomic.AtomicReference<>();

    /** Directories left out of every tree (where the store keeps its data), by device and inode. */
    private final Set<FileId> excluded = new HashSet<>();
    private final Set<Long> excludedInodes = new HashSet<>();
    private Consumer<byte[]> whenExcluded = path -> { };
    /** Hears each device, fifo or socket left out (path, kind); null: they fail the import. */
    private java.util.function.BiConsumer<byte[], String> whenSpecialSkipped;

    private record FileId(long device, long inode) {
        static FileId of(Stat stat) {
            return new FileId(stat.device(), stat.inode());
        }
    }

    /** Each worker's read buffer, of {@link #readBufferSize}. */
    private final ThreadLocal<MemorySegment> readBuffer;
    private final int readBufferSize;

    public Importer(BlobService blobs, DirectoryService directories, int threads) {
        this(blobs, directories, threads, 512);
    }

    public Importer(BlobService blobs, DirectoryService directories, int threads, int maxFilesInFlight) {
        if (threads < 1 || maxFilesInFlight < 1) {
            throw new IllegalArgumentException("threads and maxFilesInFlight must be positive");
        }
        this.blobs = blobs;
        this.directories = directories;
        this.threads = threads;
        // Each batch holds a slot while it runs: with 16 files each, 512 files in flight would
        // keep more than 32 threads idle, so more threads get smaller batches.
        this.filesPerTask = Math.max(1, Math.min(FILES_PER_TASK, maxFilesInFlight / threads));
        this.maxTasksInFlight = Math.max(1, maxFilesInFlight / filesPerTask);
        this.readBufferSize = readBufferSize(threads);
        this.readBuffer = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(readBufferSize, 4096));
    }

    /** {@link #READ_BUFFER_SIZE}, or less for so many threads that their buffers would pass {@link #READ_BUFFERS_TOTAL}. */
    static int readBufferSize(int threads) {
        long share = READ_BUFFERS_TOTAL / threads & ~4095L;
        return (int) Math.max(MIN_READ_BUFFER_SIZE, Math.min(READ_BUFFER_SIZE, share));
    }

    /**
     * Leaves {@code directories} (where the store keeps its data: its packs and a cache's
     * segments change while they would be read, and storing the store in itself is never what
     * was meant) out of every tree imported; {@code excluded} hears the path of each one left
     * out. Importing one of them itself is an error. Directories that do not exist are ignored.
     * Call before importing.
     */
    public Importer excluding(List<byte[]> directories, Consumer<byte[]> excluded) throws IOException {
        for (byte[] directory : directories) {
            Stat stat;
            try {
                stat = Posix.statat(AT_FDCWD, directory, 0, directory); // the directory a symlink to it names
            } catch (PosixException e) {
                if (e.errno() == Posix.ENOENT) {
                    continue;
                }
                throw e;
            }
            this.excluded.add(FileId.of(stat));
            this.excludedInodes.add(stat.inode());
        }
        this.whenExcluded = excluded;
        return this;
    }

    /**
     * Leaves devices, fifos and sockets found in a directory out of it instead of failing the
     * import, and tells {@code skipped} each one's path and kind ("fifo", "socket", ...), from the
     * thread that lists directories. One given as the path to import still fails: there is
     * nothing else to import then. Call before importing.
     */
    public Importer skippingSpecialFiles(java.util.function.BiConsumer<byte[], String> skipped) {
        this.whenSpecialSkipped = java.util.Objects.requireNonNull(skipped);
        return this;
    }

    /** Whether a directory entry is one of the {@link #excluding excluded} directories. */
    private boolean isExcluded(int dirFd, DirectoryReader.Entry entry, byte[] path) throws PosixException {
        // d_ino first: a stat only for the rare entry whose inode number matches.
        return excludedInodes.contains(entry.inode()) && excluded.contains(FileId.of(Posix.lstatat(dirFd, entry.name(), path)));
    }

    /**
     * Python bytecode ({@code *.pyc}, the 16-byte header of Python 3.7+) that records its
     * source's modification time, and not 0: castore keeps no times, a mount shows every file at
     * the epoch, and Python finds such bytecode stale and compiles the module again at each start.
     * Hash-based bytecode (PEP 552, flags bit 0) and bytecode recording time 0 are fine.
     */
    private static boolean bytecodeWithMtime(byte[] path, MemorySegment start, long length) {
        int n = path.length;
        if (length < 16 || n < 4 || path[n - 4] != '.' || path[n - 3] != 'p' || path[n - 2] != 'y' || path[n - 1] != 'c') {
            return false;
        }
        var littleEndian = java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
        return start.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 2) == '\r' && start.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 3) == '\n'
                && start.get(littleEndian, 4) == 0 && start.get(littleEndian, 8) != 0;
    }

    /** How many files of the imports so far are Python bytecode that trusts mtimes, and one of them; null if none. */
    public MtimeBytecode mtimeBytecode() {
        long count = mtimeBytecode.sum();
        return count == 0 ? null : new MtimeBytecode(count, mtimeBytecodeExample.get());
    }

    /** {@link #mtimeBytecode}: a count and one path (as given, below the imported PATH). */
    public record MtimeBytecode(long count, byte[] example) {
    }

    /** Totals over every import run by this Importer so far; safe to read while an import runs. */
    public ImportStats stats() {
        return new ImportStats(files.sum(), dirs.sum(), symlinks.sum(), bytesRead.sum(), bytesStored.sum(), holeBytes.sum());
    }

    /**
     * Fails as {@link #importPath} would on a path that does not exist or is a special file,
     * without a store: so that a command can refuse it before it creates one.
     */
    public static void checkImportable(byte[] path) throws IOException {
        Stat stat = Posix.lstatat(AT_FDCWD, path, path);
        if (!stat.isSymlink() && !stat.isRegular() && !stat.isDirectory()) {
            throw new SpecialFileException(path, stat.typeName());
        }
    }

    /**
     * Imports what {@code path} names (raw bytes, relative to the working directory or
     * absolute) and returns its node. Blobs and directories are stored; no root name is set.
     */
    public Node importPath(byte[] path) throws IOException {
        Stat stat = Posix.lstatat(AT_FDCWD, path, path);
        if (stat.isSymlink()) {
            symlinks.increment();
            return SymlinkNode.of(Posix.readlinkat(AT_FDCWD, path, path));
        }
        if (stat.isRegular()) {
            int fd = openListed(AT_FDCWD, path, OPEN_FILE, path, "a regular file");
            FileNode node;
            try {
                node = importFile(fd, path);
            } finally {
                Posix.close(fd);
            }
            flushBlobs();
            return node;
        }
        if (stat.isDirectory()) {
            if (excluded.contains(FileId.of(stat))) {
                throw new InvalidDataException("cannot import " + Display.escape(path) + ": it is where the store keeps its data");
            }
            return importDirectory(path);
        }
        throw new SpecialFileException(path, stat.typeName());
    }

    private FileNode importFile(int fd, byte[] path) throws IOException {
        return importFile(fd, Posix.fstat(fd, path), path);
    }

    private FileNode importFile(int fd, Stat stat, byte[] path) throws IOException {
        if (stat.isDirectory()) { // listed (or lstat'ed) as a file, opened as a directory
            throw changed(path, "a regular file", "a directory");
        }
        if (!stat.isRegular()) {
            throw new SpecialFileException(path, stat.typeName());
        }
        MemorySegment buffer = readBuffer.get();
        long size = 0;
        B3Digest digest;
        // Deferred: a remote store sends small blobs in batches (flushBlobs waits for them).
        try (BlobWriter writer = blobs.createDeferred()) {
            // The file as it was when stat'ed: its size then (one written meanwhile fails below).
            // Reading exactly that saves the extra read(2) that would only report end of file.
            // A size of 0 is read to the end: procfs files say 0 and have content.
            long limit = stat.size() == 0 ? Long.MAX_VALUE : stat.size();
            boolean sparse = stat.mayHaveHoles(HOLES_WORTH_SKIPPING);
            // With holes: the data region [dataStart, dataEnd) at or after the position, found
            // once the position reaches dataEnd; what comes before dataStart is a hole.
            long dataStart = 0;
            long dataEnd = sparse ? 0 : Long.MAX_VALUE;
            while (size < limit) {
                if (size >= dataEnd) {
                    try {
                        long data = Posix.seekData(fd, size, path);
                        dataStart = data < 0 ? limit : Math.min(data, limit);
                        dataEnd = dataStart == limit ? limit : Math.min(Posix.seekHole(fd, dataStart, path), limit);
                    } catch (PosixException e) {
                        dataStart = -1; // a file system that refuses SEEK_DATA (EINVAL)
                    }
                    if (dataStart < size || dataStart < limit && dataEnd <= dataStart) {
                        // Refused, or answers that do not add up (a hole punched meanwhile, which
                        // the check below tells; a file system's error): the rest read plainly.
                        dataStart = size;
                        dataEnd = limit;
                    }
                }
                // Big file: have the kernel fetch the next pieces while this one is hashed; with
                // holes, only data (read-ahead over a hole fills page-cache pages with zeros).
                long ahead = Math.min(stat.size(), dataEnd) - Math.max(size, dataStart) - buffer.byteSize();
                if (ahead > 0) {
                    Posix.willNeed(fd, Math.max(size, dataStart) + buffer.byteSize(), Math.min(READ_AHEAD, ahead));
                }
                long want = Math.min(buffer.byteSize(), limit - size);
                long n;
                if (size < dataStart) {
                    n = Math.min(want, dataStart - size);
                    buffer.asSlice(0, n).fill((byte) 0);
                    holeBytes.add(n);
                } else if (sparse) {
                    n = Posix.pread(fd, buffer, Math.min(want, dataEnd - size), size, path);
                } else {
                    n = Posix.read(fd, buffer, 0, want, path);
                }
                if (n == 0) {
                    break;
                }
                if (size == 0 && bytecodeWithMtime(path, buffer, n)) {
                    mtimeBytecode.increment();
                    mtimeBytecodeExample.compareAndSet(null, path);
                }
                writer.write(buffer.asSlice(0, n).asByteBuffer());
                size += n;
                bytesRead.add(n);
                if (limit == Long.MAX_VALUE) {
                    // Read to its end, a file written meanwhile would never end if its writer is
                    // faster: a procfs file keeps saying 0, a regular one being written does not.
                    checkNotWritten(fd, stat, path);
                }
            }
            checkNotWritten(fd, stat, path);
            digest = writer.finish();
            bytesStored.add(writer.bytesStored());
        }
        files.increment();
        return new FileNode(digest, size, stat.ownerExecutable());
    }

    /**
     * A file written while it was read was stored as a mix of its old and new bytes, or cut at
     * its old size, content it never held at any moment: the import fails instead, as it does for
     * a file that changed type (ImporterTest.aFileWrittenWhileItIsReadIsAnErrorNamingIt). The
     * modification time tells, not the change time, which a chmod or a new hard link also moves.
     * A file that ended before the size {@code fstat} gave is not one: sysfs files say 4096 and
     * hold a line, and are stored as read (ImporterTest.aSysfsFileShorterThanItsSizeIsReadAsItIs).
     * procfs files say 0 and are read to their end, checked after each read: one that no longer
     * says 0 is a regular file written since it was opened
     * (ImporterTest.anEmptyFileWrittenFasterThanItIsReadIsAnErrorAndTheImportEnds).
     */
    private static void checkNotWritten(int fd, Stat before, byte[] path) throws IOException {
        Stat now = Posix.fstat(fd, path);
        String what;
        if (before.size() != 0 && now.size() < before.size()) {
            what = "it shrank while it was read (from " + before.size() + " to " + now.size() + " bytes)";
        } else if (now.size() > before.size()) {
            what = "it grew while it was read (from " + before.size() + " to " + now.size() + " bytes)";
        } else if (now.mtime() != before.mtime()) {
            what = "it was written while it was read (its modification time changed)";
        } else {
            return;
        }
        throw new IOException("cannot import " + Display.escape(path) + ": " + what + "; import it again when nothing writes it");
    }

    /** Waits for the blobs deferred writers finished to be stored (BlobService.createDeferred). */
    private void flushBlobs() throws IOException {
        bytesStored.add(blobs.flushWrites());
    }

    private DirectoryNode importDirectory(byte[] rootPath) throws IOException {
        int rootFd = Posix.openat(AT_FDCWD, rootPath, OPEN_DIRECTORY, 0, rootPath);
        try (ClosurePutter putter = directories.putClosure(); // closed unfinished if the import fails
                TreeWork work = new TreeWork(threads, maxTasksInFlight, "castore-import");
                DirectoryReader reader = new DirectoryReader()) {
            Closure closure = new Closure(putter);
            PendingDirectory root = new PendingDirectory(null, null, closure);
            root.fd = work.directory(rootFd, rootPath);
            ArrayDeque<PendingDirectory> stack = new ArrayDeque<>();
            stack.push(root);
            try {
                while (!stack.isEmpty() && !work.failed()) {
                    list(stack.pop(), stack, reader, work);
                }
            } catch (IOException | RuntimeException e) {
                work.fail(e);
            }
            work.finish();
            DirectoryNode node = root.result;
            if (node == null) {
                throw new IllegalStateException("import of " + Display.escape(rootPath) + " ended without a root");
            }
            flushBlobs(); // every blob the Directories name is stored before the last of them
            closure.finish();
            return node;
        }
    }

    /** Lists one directory: subdirectories go on the stack, files to the pool, symlinks are read here. */
    private void list(PendingDirectory dir, ArrayDeque<PendingDirectory> stack, DirectoryReader reader, TreeWork work)
            throws IOException {
        if (dir.fd == null) {
            TreeWork.DirFd parent = dir.parent.fd;
            try {
                byte[] path = Posix.child(parent.path, dir.name.bytesUnsafe()); // the parent is open until we are
                dir.fd = work.directory(openListed(parent.fd, dir.name.bytesUnsafe(), OPEN_DIRECTORY, path, "a directory"), path);
            } finally {
                parent.release();
            }
        }
        TreeWork.DirFd fd = dir.fd;
        List<PendingFile> batch = new ArrayList<>(filesPerTask);
        List<PendingDirectory> subdirectories = new ArrayList<>();
        try {
            for (DirectoryReader.Entry entry : reader.list(fd.fd, fd.path)) {
                byte[] path = Posix.child(fd.path, entry.name());
                int type = entry.type() == Posix.DT_UNKNOWN ? toDirentType(Posix.lstatat(fd.fd, entry.name(), path)) : entry.type();
                Name name;
                try {
                    name = Name.of(entry.name());
                } catch (InvalidDataException e) { // a name over 255 bytes, from a file system that allows it
                    throw new InvalidDataException("cannot import " + Display.escape(path) + ": " + e.getMessage());
                }
                switch (type) {
                    case Posix.DT_DIR -> {
                        if (!excludedInodes.isEmpty() && isExcluded(fd.fd, entry, path)) {
                            whenExcluded.accept(path);
                            continue;
                        }
                        dir.expectChild();
                        fd.retain();
                        subdirectories.add(new PendingDirectory(dir, name, dir.closure));
                    }
                    case Posix.DT_REG -> {
                        dir.expectChild();
                        batch.add(new PendingFile(entry.name(), name, path));
                        if (batch.size() == filesPerTask) {
                            submitFiles(dir, batch, work);
                            batch = new ArrayList<>(filesPerTask);
                        }
                    }
                    case Posix.DT_LNK -> {
                        dir.expectChild();
                        symlinks.increment();
                        dir.childDone(name, SymlinkNode.of(readListedLink(fd.fd, entry.name(), path)));
                    }
                    default -> {
                        if (whenSpecialSkipped == null) {
                            throw new SpecialFileException(path, direntTypeName(type));
                        }
                        whenSpecialSkipped.accept(path, direntTypeName(type));
                    }
                }
            }
            if (!batch.isEmpty()) {
                submitFiles(dir, batch, work);
            }
        } finally {
            // Listed next in the order they were listed (the stack pops the last one pushed), so
            // that file data lands in the packs in the order a walk of the source visits it.
            for (int i = subdirectories.size() - 1; i >= 0; i--) {
                stack.push(subdirectories.get(i));
            }
            fd.release();
        }
        dirs.increment();
        dir.childDone(null, null);
    }

    /** A regular file listed but not read yet. */
    private record PendingFile(byte[] rawName, Name name, byte[] path) {
    }

    /**
     * Reads a batch of files of one directory on one worker. Batches, not single files, are the
     * unit of work so that the walker and the workers hand over once per batch, not per file
     * (per-file handovers cost two context switches each on a tree of small files). Sizes are
     * unknown until a file is open, so a worker that meets a big file hands every later file of
     * its batch back to the pool first, if a slot is free: big files then go in parallel, and
     * each idle worker takes the next one.
     */
    private void submitFiles(PendingDirectory dir, List<PendingFile> files, TreeWork work) throws IOException {
        TreeWork.DirFd fd = dir.fd.retain();
        work.submit(() -> importFiles(dir, fd, files, work));
    }

    /** A file of a batch, opened ahead of its turn. */
    private record OpenFile(PendingFile file, int fd, Stat stat) {
    }

    private void importFiles(PendingDirectory dir, TreeWork.DirFd fd, List<PendingFile> files, TreeWork work) throws IOException {
        ArrayDeque<OpenFile> ahead = new ArrayDeque<>();
        try {
            int opened = 0;
            while (!ahead.isEmpty() || opened < files.size()) {
                // Keep a few files open ahead with the kernel already reading them: on a cold
                // cache that overlaps their I/O with the hashing of this one.
                while (opened < files.size() && ahead.size() <= OPEN_AHEAD) {
                    PendingFile f = files.get(opened++);
                    int fileFd = openListed(fd.fd, f.rawName(), OPEN_FILE, f.path(), "a regular file");
                    OpenFile o;
                    try {
                        o = new OpenFile(f, fileFd, Posix.fstat(fileFd, f.path()));
                    } catch (IOException | RuntimeException e) {
                        Posix.close(fileFd); // not in ahead yet: nobody else would close it
                        throw e;
                    }
                    ahead.add(o);
                    Posix.willNeed(fileFd, 0, Math.min(o.stat().size(), readBufferSize));
                }
                OpenFile current = ahead.poll();
                FileNode node;
                try {
                    if (current.stat().size() >= SPLIT_SIZE && (!ahead.isEmpty() || opened < files.size())) {
                        // Everything after this file goes back to the pool, the files opened
                        // ahead included (closed here, reopened there; the kernel keeps reading
                        // them): handing back only the unopened rest left one worker with five
                        // big files and the other with three, so the last two ran alone.
                        List<PendingFile> rest = files.subList(opened - ahead.size(), files.size());
                        fd.retain();
                        if (work.trySubmit(() -> importFiles(dir, fd, rest, work))) {
                            closeAll(ahead);
                            files = List.of();
                            opened = 0;
                        } else {
                            fd.release();
                        }
                    }
                    node = importFile(current.fd(), current.stat(), current.file().path());
                } finally {
                    Posix.close(current.fd());
                }
                dir.childDone(current.file().name(), node);
            }
        } finally {
            closeAll(ahead);
            fd.release();
        }
    }

    private static void closeAll(ArrayDeque<OpenFile> files) {
        for (OpenFile o; (o = files.poll()) != null; ) {
            Posix.close(o.fd());
        }
    }

    /**
     * Opens an entry as its listing said it was. O_NOFOLLOW and O_DIRECTORY make an entry replaced
     * meanwhile fail with ELOOP (now a symlink) or ENOTDIR (no longer a directory), whose own
     * words ("Too many levels of symbolic links") say nothing of what happened
     * (ImporterTest.aFileReplacedByADirectoryOrASymlinkAfterItWasListedIsAnErrorSayingItChanged).
     */
    private static int openListed(int dirFd, byte[] name, int flags, byte[] path, String listedAs) throws IOException {
        try {
            return Posix.openat(dirFd, name, flags, 0, path);
        } catch (PosixException e) {
            if (e.errno() == Posix.ELOOP) {
                throw changed(path, listedAs, "a symlink");
            }
            if (e.errno() == Posix.ENOENT) { // removed (or renamed away) since it was listed
                throw changed(path, listedAs, "gone");
            }
            if (e.errno() == Posix.ENOTDIR && (flags & O_DIRECTORY) != 0) {
                throw changed(path, listedAs, "something else");
            }
            throw e;
        }
    }

    /** Reads a link listed as one; EINVAL means it is no longer a symlink. */
    private static byte[] readListedLink(int dirFd, byte[] name, byte[] path) throws IOException {
        try {
            return Posix.readlinkat(dirFd, name, path);
        } catch (PosixException e) {
            if (e.errno() == Posix.EINVAL) {
                throw changed(path, "a symlink", "something else");
            }
            throw e;
        }
    }

    private static IOException changed(byte[] path, String listedAs, String now) {
        return new IOException("cannot import " + Display.escape(path) + ": it changed during the import (" + listedAs
                + " when listed, now " + now + "); import it again when nothing changes it");
    }

    private static int toDirentType(Stat stat) {
        return switch (stat.type()) {
            case Posix.S_IFDIR -> Posix.DT_DIR;
            case Posix.S_IFREG -> Posix.DT_REG;
            case Posix.S_IFLNK -> Posix.DT_LNK;
            default -> stat.type() >>> 12; // DT_* = S_IF* >> 12
        };
    }

    private static String direntTypeName(int type) {
        return new Stat(type << 12, 0, 0, 0, 0, 0).typeName();
    }

    /**
     * A directory whose children are not all known yet. Counts outstanding children (plus one
     * for its own listing); the thread that completes the last one builds, puts and hands the
     * node to the parent, so puts go leaves first. The builder is dropped once the node is known.
     */
    private static final class PendingDirectory {
        final PendingDirectory parent;
        final Name name;
        final Closure closure;
        TreeWork.DirFd fd;
        private Directory.Builder builder = new Directory.Builder();
        private int outstanding = 1;
        DirectoryNode result;

        // No path of its own: it is made from the parent's open descriptor's when this one is
        // opened (kept per pending directory, a chain D deep would hold D^2 bytes of paths).
        PendingDirectory(PendingDirectory parent, Name name, Closure closure) {
            this.parent = parent;
            this.name = name;
            this.closure = closure;
        }

        synchronized void expectChild() {
            outstanding++;
        }

        /**
         * Records a child (or, with a null name, the end of the listing); completes the directory
         * on the last one, and its parent if that was the parent's last, and so on up: in a loop,
         * since a chain of directories can be deeper than a thread's stack.
         */
        void childDone(Name childName, Node node) throws IOException {
            PendingDirectory dir = this;
            while (true) {
                Directory done;
                synchronized (dir) {
                    if (childName != null) {
                        dir.builder.add(childName, node);
                    }
                    if (--dir.outstanding > 0) {
                        return;
                    }
                    done = dir.builder.build();
                    dir.builder = null;
                }
                closure.put(done);
                DirectoryNode completed = new DirectoryNode(done.digest(), done.size());
                if (dir.parent == null) {
                    dir.result = completed;
                    return;
                }
                childName = dir.name;
                node = completed;
                dir = dir.parent;
            }
        }
    }

    /** The closure being put, shared by the threads that complete directories; each distinct Directory once. */
    private static final class Closure {
        private final ClosurePutter putter;
        private final Set<B3Digest> sent = new HashSet<>();

        Closure(ClosurePutter putter) {
            this.putter = putter;
        }

        synchronized void put(Directory directory) throws IOException {
            if (sent.add(directory.digest())) {
                putter.put(directory);
            }
        }

        synchronized void finish() throws IOException {
            putter.finish();
        }
    }
}
