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
import castore.service.CorruptedDataException;
import castore.service.DirectoryService;
import castore.service.NotFoundException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * Writes a castore tree back to the filesystem: directories 0755, files 0644 (0755 when
 * executable), symlinks as symlinks, with names as raw bytes. Directories are created by one
 * walker thread depth-first; file contents are written by a pool of {@code threads} workers.
 * The destination must not exist. A failed export leaves what it wrote so far.
 */
public final class Exporter {
    private static final int WRITE_BUFFER_SIZE = 1 << 20;
    private static final int OPEN_DIRECTORY = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    private static final int CREATE_FILE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;

    private static final ThreadLocal<MemorySegment> WRITE_BUFFER =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(WRITE_BUFFER_SIZE, 4096));

    private final BlobService blobs;
    private final DirectoryService directories;
    private final int threads;

    private final LongAdder files = new LongAdder();
    private final LongAdder dirs = new LongAdder();
    private final LongAdder symlinks = new LongAdder();
    private final LongAdder bytesWritten = new LongAdder();

    public Exporter(BlobService blobs, DirectoryService directories, int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be positive");
        }
        this.blobs = blobs;
        this.directories = directories;
        this.threads = threads;
    }

    public ExportStats stats() {
        return new ExportStats(files.sum(), dirs.sum(), symlinks.sum(), bytesWritten.sum());
    }

    /** Writes {@code node} at {@code dest} (raw path bytes), which must not exist yet. */
    public void export(Node node, byte[] dest) throws IOException {
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
            for (Map.Entry<Name, Node> e : directory.entries().entrySet()) {
                byte[] name = e.getKey().bytesUnsafe();
                byte[] path = Posix.child(pending.path, name);
                switch (e.getValue()) {
                    case DirectoryNode d -> stack.push(new PendingDirectory(d, fd.retain(), name, path));
                    case FileNode f -> {
                        fd.retain();
                        work.submit(() -> {
                            try {
                                writeFile(fd.fd, name, f, path);
                            } finally {
                                fd.release();
                            }
                        });
                    }
                    case SymlinkNode s -> {
                        Posix.symlinkat(s.target().toByteArray(), fd.fd, name, path);
                        symlinks.increment();
                    }
                }
            }
        } finally {
            fd.release();
        }
        dirs.increment();
    }

    private Directory fetch(B3Digest digest, byte[] path) throws IOException {
        return directories.get(digest).orElseThrow(() ->
                new NotFoundException("directory " + digest + " (for " + Display.escape(path) + ") is not in the store"));
    }

    private void writeFile(int dirFd, byte[] name, FileNode node, byte[] path) throws IOException {
        int mode = node.executable() ? 0755 : 0644;
        BlobReader reader = null;
        if (node.size() > 0) {
            reader = blobs.open(node.digest()).orElseThrow(() ->
                    new NotFoundException("blob " + node.digest() + " (for " + Display.escape(path) + ") is not in the store"));
        }
        try {
            int fd = Posix.openat(dirFd, name, CREATE_FILE, mode, path);
            boolean written = false;
            try {
                Posix.fchmod(fd, mode, path);
                if (reader != null) {
                    copy(reader, node, fd, path);
                }
                written = true;
            } finally {
                if (written) {
                    Posix.closeWritten(fd, path); // a delayed write error fails the export
                } else {
                    Posix.close(fd);
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
        while (position < node.size()) {
            buffer.clear();
            int n = reader.read(position, buffer);
            if (n <= 0) {
                throw new CorruptedDataException("blob " + node.digest() + " (for " + Display.escape(path) + ") ended at byte "
                        + position + " of " + node.size());
            }
            Posix.writeFully(fd, segment, 0, n, path);
            position += n;
            bytesWritten.add(n);
        }
    }
}
