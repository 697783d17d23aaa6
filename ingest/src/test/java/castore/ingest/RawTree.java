package castore.ingest;

import static castore.ingest.posix.Posix.AT_FDCWD;

import castore.ingest.posix.DirectoryReader;
import castore.ingest.posix.Posix;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/**
 * Builds and describes file trees by raw byte paths (java.nio cannot name non-UTF-8 files).
 * {@link #describe} is an independent oracle for round trips: every name, type, owner-exec bit,
 * content hash and symlink target under a directory, keyed by escaped relative path.
 */
final class RawTree {
    private RawTree() {
    }

    static byte[] bytes(Path p) {
        return p.toString().getBytes(StandardCharsets.UTF_8);
    }

    static byte[] join(byte[] dir, String... names) {
        byte[] out = dir;
        for (String n : names) {
            out = Posix.child(out, n.getBytes(StandardCharsets.UTF_8));
        }
        return out;
    }

    static byte[] join(byte[] dir, byte[] name) {
        return Posix.child(dir, name);
    }

    static void mkdir(byte[] path) throws IOException {
        Posix.mkdirat(AT_FDCWD, path, 0755, path);
    }

    static void write(byte[] path, byte[] content, int mode) throws IOException {
        int fd = Posix.openat(AT_FDCWD, path, Posix.O_WRONLY | Posix.O_CREAT | Posix.O_EXCL, mode, path);
        try (Arena arena = Arena.ofConfined()) {
            Posix.fchmod(fd, mode, path);
            if (content.length > 0) {
                MemorySegment seg = arena.allocate(content.length);
                MemorySegment.copy(content, 0, seg, ValueLayout.JAVA_BYTE, 0, content.length);
                Posix.pwriteFully(fd, seg, 0, content.length, 0, path);
            }
        } finally {
            Posix.close(fd);
        }
    }

    static void write(byte[] path, String content) throws IOException {
        write(path, content.getBytes(StandardCharsets.UTF_8), 0644);
    }

    static void symlink(byte[] target, byte[] path) throws IOException {
        Posix.symlinkat(target, AT_FDCWD, path, path);
    }

    static void symlink(String target, byte[] path) throws IOException {
        symlink(target.getBytes(StandardCharsets.UTF_8), path);
    }

    /** Every entry under {@code root} (not root itself): relative escaped path -> type and content. */
    static Map<String, String> describe(byte[] root) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (DirectoryReader reader = new DirectoryReader()) {
            walk(root, "", out, reader);
        }
        return out;
    }

    private static void walk(byte[] dir, String rel, Map<String, String> out, DirectoryReader reader) throws IOException {
        int fd = Posix.openat(AT_FDCWD, dir, Posix.O_RDONLY | Posix.O_DIRECTORY, 0, dir);
        try {
            for (DirectoryReader.Entry e : reader.list(fd, dir)) {
                byte[] path = Posix.child(dir, e.name());
                String key = rel + "/" + HexFormat.of().formatHex(e.name());
                Posix.Stat st = Posix.lstatat(AT_FDCWD, path, path);
                if (st.isDirectory()) {
                    out.put(key, "dir");
                    walk(path, key, out, reader);
                } else if (st.isSymlink()) {
                    out.put(key, "symlink " + HexFormat.of().formatHex(Posix.readlinkat(AT_FDCWD, path, path)));
                } else {
                    out.put(key, "file exec=" + st.ownerExecutable() + " " + st.size() + " " + sha256(path));
                }
            }
        } finally {
            Posix.close(fd);
        }
    }

    static String sha256(byte[] path) throws IOException {
        int fd = Posix.openat(AT_FDCWD, path, Posix.O_RDONLY, 0, path);
        try (Arena arena = Arena.ofConfined()) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            MemorySegment buf = arena.allocate(1 << 20);
            while (true) {
                long n = Posix.read(fd, buf, 0, buf.byteSize(), path);
                if (n == 0) {
                    break;
                }
                md.update(buf.asSlice(0, n).asByteBuffer());
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        } finally {
            Posix.close(fd);
        }
    }
}
