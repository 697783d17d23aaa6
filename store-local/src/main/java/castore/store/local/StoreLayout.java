package castore.store.local;

import castore.model.InvalidDataException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Set;

/**
 * The directory tree of a local store, and the marker that makes a directory one. A directory
 * without the marker is initialised only if it is empty (or holds nothing but our own names from
 * an interrupted initialisation); anything else is refused, so a typo never scribbles into a
 * user's directory.
 */
record StoreLayout(Path root) {
    static final String MARKER = "castore-store";
    static final int VERSION = 1;
    private static final String MARKER_TEXT = "castore local store\nlayout " + VERSION + "\n";
    private static final Set<String> OUR_NAMES = Set.of("packs", "roots", "lock", MARKER);

    Path marker() {
        return root.resolve(MARKER);
    }

    /** Writers hold it shared, garbage collection exclusive. */
    Path writerLock() {
        return root.resolve("lock");
    }

    Path packs() {
        return root.resolve("packs");
    }

    Path roots() {
        return root.resolve("roots");
    }

    /** Checks that {@code root} is a store of our layout version, creating one if it is empty or absent. */
    static StoreLayout openOrInit(Path root) throws IOException {
        StoreLayout layout = new StoreLayout(root.toAbsolutePath().normalize());
        layout.check();
        return layout;
    }

    private void check() throws IOException {
        if (Files.exists(root) && !Files.isDirectory(root)) {
            throw notAStore("it is not a directory");
        }
        Path marker = marker();
        if (Files.isRegularFile(marker)) {
            checkMarker(marker);
        } else {
            initialise();
        }
        Files.createDirectories(packs());
        Files.createDirectories(roots());
    }

    private void checkMarker(Path marker) throws IOException {
        String text = Files.readString(marker, StandardCharsets.ISO_8859_1);
        if (!text.startsWith("castore local store\n")) {
            throw notAStore("its " + MARKER + " file is not a castore marker");
        }
        String version = text.substring(text.indexOf('\n') + 1).strip();
        if (!version.equals("layout " + VERSION)) {
            throw new InvalidDataException(root + " is a castore store of another layout (" + version
                    + "); this castore reads layout " + VERSION);
        }
    }

    private void initialise() throws IOException {
        Files.createDirectories(root);
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(root)) {
            for (Path entry : entries) {
                String name = entry.getFileName().toString();
                if (!OUR_NAMES.contains(name) && !name.startsWith(MARKER + ".tmp")) {
                    throw notAStore("it is not empty and has no " + MARKER + " marker");
                }
            }
        }
        Files.createDirectories(packs());
        Files.createDirectories(roots());
        // The marker comes last: a store is a store once its subdirectories exist.
        writeAtomically(marker(), MARKER_TEXT.getBytes(StandardCharsets.ISO_8859_1), true);
    }

    private InvalidDataException notAStore(String why) {
        return new InvalidDataException(root + " is not a castore store (" + why + ")");
    }

    /** Writes {@code path} through a unique temporary file and a rename; with {@code sync}, durably. */
    static void writeAtomically(Path path, byte[] content, boolean sync) throws IOException {
        Path tmp = path.resolveSibling(path.getFileName() + ".tmp" + Long.toHexString(System.nanoTime()) + ProcessHandle.current().pid());
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            var buf = ByteBuffer.wrap(content);
            while (buf.hasRemaining()) {
                ch.write(buf);
            }
            if (sync) {
                ch.force(true);
            }
        } catch (IOException | RuntimeException e) {
            // Its name is unique: left behind (a full disk), nothing would ever remove it.
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException notDeleted) {
                e.addSuppressed(notDeleted);
            }
            if (e instanceof IOException io) {
                throw named(path, io);
            }
            throw e;
        }
        publish(tmp, path, sync);
    }

    /**
     * {@code e} with {@code path} in its message: a FileChannel's write errors are the bare
     * strerror ("No space left on device"), which the command would print naming nothing.
     */
    static IOException named(Path path, IOException e) {
        if (e instanceof FileSystemException || (e.getMessage() != null && e.getMessage().contains(path.toString()))) {
            return e;
        }
        return new IOException("cannot write " + path + ": " + e.getMessage(), e);
    }

    /** Renames a finished temporary file into place atomically and (if {@code sync}) makes the rename durable. */
    static void publish(Path tmp, Path target, boolean sync) throws IOException {
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.deleteIfExists(tmp);
            throw new IOException("the file system of " + target + " cannot rename atomically; a local store needs it", e);
        }
        if (sync) {
            syncDirectory(target.getParent());
        }
    }

    static void syncDirectory(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (NoSuchFileException e) {
            throw e;
        } catch (IOException e) {
            // Some file systems refuse fsync on a directory; the rename is still atomic there.
        }
    }
}
