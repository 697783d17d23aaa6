package castore.service.cache;

import castore.hash.Blake3;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.service.RootService;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * A remote store's root catalog, with the last answer it gave for each name kept in the cache
 * directory ({@link #lastKnown}), so that a mount started, or running, while the remote cannot be
 * asked still finds the roots it had: the chunks and Directories in the cache are of no use to a
 * mount that cannot name the root above them. Every call goes to the remote catalog; only its
 * answers are kept.
 *
 * <p>Layout: {@code DIR/roots/<store>/<name>}, where {@code <store>} is the first 16 hex digits of
 * the BLAKE3 digest of the store's address (one cache directory may serve several stores; the
 * address is in {@code DIR/roots/<store>/address}) and {@code <name>} is the hex BLAKE3 digest of
 * the root name (names can be 255 bytes, longer than a file name once hex-encoded). A file holds
 * the root as a tvix {@code Node} message, name included, which is checked on reading; it is
 * written to a temporary file and renamed into place, so a reader sees a whole answer or none.
 * Answers are not trusted beyond that: the nodes they name are verified as they are read, as
 * everything from the cache is. A name the catalog says is gone, or removes, is deleted.
 */
public final class RememberedRoots implements RootService {
    private static final String ADDRESS_FILE = "address";

    private final RootService remote;
    private final Path dir;
    /** What this process last wrote or found for each name: the same answer again is not written again. */
    private final Map<Name, Node> written = new ConcurrentHashMap<>();

    private RememberedRoots(RootService remote, Path dir) {
        this.remote = remote;
        this.dir = dir;
    }

    /** Keeps the answers of {@code remote}, the catalog of the store at {@code address}, under {@code cacheDirectory}. */
    public static RememberedRoots under(Path cacheDirectory, String address, RootService remote) throws IOException {
        String key = Blake3.digest(address.getBytes(StandardCharsets.UTF_8)).toHex().substring(0, 16);
        Path dir = cacheDirectory.resolve("roots").resolve(key);
        Files.createDirectories(dir);
        Path addressFile = dir.resolve(ADDRESS_FILE);
        if (!Files.exists(addressFile)) {
            writeAtomically(addressFile, (address + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return new RememberedRoots(remote, dir);
    }

    /** The directory the answers are kept in (for tests). */
    Path directory() {
        return dir;
    }

    @Override
    public Optional<Node> get(Name name) throws IOException {
        Optional<Node> answer = remote.get(name);
        remember(name, answer);
        return answer;
    }

    @Override
    public void put(Name name, Node node) throws IOException {
        remote.put(name, node);
        remember(name, Optional.of(node));
    }

    @Override
    public boolean remove(Name name) throws IOException {
        boolean removed = remote.remove(name);
        remember(name, Optional.empty());
        return removed;
    }

    @Override
    public Stream<Node.NamedNode> list() throws IOException {
        return remote.list();
    }

    /** The last answer kept for {@code name}; empty if none is, or what is kept is not a whole answer for it. */
    @Override
    public Optional<Node> lastKnown(Name name) {
        Path file = fileOf(name);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            return Optional.empty(); // none kept, or unreadable: as good as none
        }
        try {
            Node.NamedNode named = Node.fromProto(castore.proto.Node.parseFrom(bytes));
            if (named.name().equals(name)) {
                written.putIfAbsent(name, named.node());
                return Optional.of(named.node());
            }
        } catch (IOException | InvalidDataException e) {
            // damaged: dropped below
        }
        try {
            Files.deleteIfExists(file);
        } catch (IOException ignored) {
            // read-only or gone: nothing to do
        }
        return Optional.empty();
    }

    /**
     * Keeps {@code answer} for {@code name} (empty: deletes what is kept). Best effort: a cache
     * directory that cannot be written costs the answer kept, never the call that got it.
     * Synchronized so that the file and {@link #written} agree when two answers for a name come
     * at once (answers are few: a name in use is asked for twice per root TTL).
     */
    private synchronized void remember(Name name, Optional<Node> answer) {
        try {
            if (answer.isEmpty()) {
                written.remove(name);
                Files.deleteIfExists(fileOf(name));
            } else if (!answer.get().equals(written.get(name))) {
                writeAtomically(fileOf(name), answer.get().toNodeProto(name).toByteArray());
                written.put(name, answer.get());
            }
        } catch (IOException | RuntimeException e) {
            written.remove(name);
        }
    }

    private Path fileOf(Name name) {
        return dir.resolve(Blake3.digest(name.bytesUnsafe()).toHex());
    }

    private static void writeAtomically(Path file, byte[] bytes) throws IOException {
        Path tmp = Files.createTempFile(file.getParent(), ".root-", ".tmp");
        try {
            Files.write(tmp, bytes);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // the first failure is the one to report
            }
            throw e;
        }
    }

    @Override
    public void close() {
        // the remote catalog is the store's, which closes it
    }

    /** Whether {@code name} has an answer kept on disk (for tests). */
    boolean kept(Name name) {
        return Files.exists(fileOf(name));
    }
}
