package castore.grpc.client;

import castore.grpc.MessageLimit;
import castore.grpc.proto.DirectoryPartServiceGrpc;
import castore.grpc.proto.DirectoryServiceGrpc;
import castore.grpc.proto.GetDirectoryRequest;
import castore.grpc.proto.PutDirectoryResponse;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.InvalidDataException;
import castore.service.ClosurePutter;
import castore.service.CorruptedDataException;
import castore.service.DirectoryService;
import castore.service.NotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A DirectoryService on a castore or tvix daemon. Every Directory received is validated
 * ({@link Directory#fromProto}: sorted, valid names, no unknown fields) and must have the digest
 * asked for; in a recursive Get, each one must be a child not yet received of one already
 * received, with the size its node claims, and the closure must be complete.
 */
final class RemoteDirectoryService implements DirectoryService {
    /**
     * The largest closure part sent to a server that takes parts, or its own limit if lower: a
     * round trip per 64 MiB of Directories costs nothing next to storing them, and the server
     * holds no more than that of a closure at a time.
     */
    static final long PART_BYTES = 64L << 20;

    private final Connection connection;

    RemoteDirectoryService(Connection connection) {
        this.connection = connection;
    }

    private InboundStream<castore.proto.Directory> get(B3Digest digest, boolean recursive) {
        var request = GetDirectoryRequest.newBuilder().setDigest(digest.toByteString()).setRecursive(recursive).build();
        return InboundStream.open(connection, DirectoryServiceGrpc.getGetMethod(), request,
                (recursive ? "get directory closure " : "get directory ") + digest);
    }

    @Override
    public Optional<Directory> get(B3Digest digest) throws IOException {
        try (var stream = get(digest, false)) {
            if (!stream.hasNext()) {
                return Optional.empty();
            }
            Directory d = received(stream.next(), digest);
            if (stream.hasNext()) {
                throw new CorruptedDataException("get directory " + digest + ": " + connection.address + " sent more than one Directory");
            }
            return Optional.of(d);
        } catch (UncheckedIOException e) {
            if (e.getCause() instanceof NotFoundException) {
                return Optional.empty();
            }
            throw e.getCause();
        }
    }

    /** Validates a received Directory and checks it is the one expected. */
    private Directory received(castore.proto.Directory message, B3Digest expected) throws CorruptedDataException {
        Directory d;
        try {
            d = Directory.fromProto(message);
        } catch (InvalidDataException e) {
            throw new CorruptedDataException("invalid Directory from " + connection.address + " for " + expected + ": " + e.getMessage());
        }
        if (!d.digest().equals(expected)) {
            throw new CorruptedDataException(connection.address + " sent Directory " + d.digest() + " for " + expected);
        }
        return d;
    }

    @Override
    public boolean has(B3Digest digest) throws IOException {
        return get(digest).isPresent();
    }

    @Override
    public B3Digest put(Directory directory) throws IOException {
        try (ClosurePutter putter = putClosure()) {
            putter.put(directory);
            return putter.finish();
        }
    }

    /**
     * Streams the closure to the server as it comes. A server with DirectoryPartService (a castore
     * daemon) gets it in parts of at most its part limit, each checked and stored on its own, so
     * no closure is too large for it; any other gets one Put, which it checks whole before storing
     * any of it.
     */
    @Override
    public ClosurePutter putClosure() {
        return new ClosurePutter() {
            private long partLimit = -1; // asked at the first put: 0 means one Put for the closure
            private OutboundStream<castore.proto.Directory, PutDirectoryResponse> stream;
            private B3Digest last;
            private long bytes;
            private int parts;
            private boolean finished;

            @Override
            public void put(Directory directory) throws IOException {
                int size = directory.encode().length;
                if (size > MessageLimit.BYTES) { // else the server's RESOURCE_EXHAUSTED, which names no directory
                    throw new InvalidDataException("a directory of " + directory.entryCount() + " entries (" + directory.digest() + ") is "
                            + size + " bytes encoded, over the " + MessageLimit.display() + " a gRPC message may carry: "
                            + "keep it in a local or S3 store");
                }
                if (partLimit < 0) {
                    partLimit = Math.min(PART_BYTES, connection.closurePartLimit());
                }
                if (partLimit > 0) {
                    if (size > partLimit) {
                        throw new InvalidDataException("a directory of " + directory.entryCount() + " entries (" + directory.digest()
                                + ") is " + size + " bytes encoded, over the " + partLimit + " bytes " + connection.address
                                + " takes of a closure at once (castore daemon --max-closure)");
                    }
                    if (stream != null && bytes + size > partLimit) {
                        endStream(); // leaves first: everything this part's Directories name is stored now
                    }
                }
                if (stream == null) {
                    stream = partLimit > 0
                            ? OutboundStream.open(connection, DirectoryPartServiceGrpc.getPutPartMethod(), "put directories (part " + (parts + 1) + ")")
                            : OutboundStream.open(connection, DirectoryServiceGrpc.getPutMethod(), "put directories");
                }
                stream.send(directory.toProto());
                bytes += size;
                last = directory.digest();
            }

            @Override
            public B3Digest finish() throws IOException {
                if (last == null) {
                    throw new InvalidDataException("empty closure");
                }
                finished = true; // answered or failed, the call has ended either way
                endStream();
                return last;
            }

            /** Ends the current stream and checks its answer: the server has stored it then. */
            private void endStream() throws IOException {
                var ending = stream;
                stream = null;
                PutDirectoryResponse response = ending.finish(connection.timeout.plusNanos(bytes * 100)); // the server checks and stores it all now
                if (!response.getRootDigest().equals(last.toByteString())) {
                    throw new CorruptedDataException("put directories: " + connection.address + " answered root "
                            + response.getRootDigest().size() + " bytes, not " + last);
                }
                bytes = 0;
                parts++;
            }

            /**
             * Cancels an unfinished Put or part: the server discards what it buffered of it.
             * Parts answered before stay stored, as blobs an import stored do, until a gc.
             */
            @Override
            public void close() {
                if (stream != null && !finished) {
                    finished = true;
                    stream.cancel();
                }
            }
        };
    }

    /** A castore daemon takes closures that name stored children; a tvix server wants them whole. */
    @Override
    public boolean acceptsStoredChildren() throws IOException {
        return connection.castoreServer();
    }

    /** One streaming Get (recursive) per closure. */
    @Override
    public boolean streamsClosures() {
        return true;
    }

    @Override
    public Stream<Directory> getRecursive(B3Digest root) {
        InboundStream<castore.proto.Directory> stream = get(root, true);
        Iterator<Directory> checked = new Iterator<>() {
            /** Digests announced by a received Directory and not received yet, with their sizes. */
            private final Map<B3Digest, Long> expected = new HashMap<>(Map.of(root, -1L));
            /** Digests received, with their sizes. */
            private final Map<B3Digest, Long> seen = new HashMap<>();

            @Override
            public boolean hasNext() {
                if (stream.hasNext()) {
                    return true;
                }
                if (!expected.isEmpty()) {
                    B3Digest missing = expected.keySet().iterator().next();
                    throw new UncheckedIOException(new NotFoundException("directory closure of " + root + " from "
                            + connection.address + " lacks " + missing + " (and " + (expected.size() - 1) + " more)"));
                }
                return false;
            }

            @Override
            public Directory next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                castore.proto.Directory message = stream.next();
                try {
                    Directory d = Directory.fromProto(message);
                    B3Digest digest = d.digest();
                    Long size = expected.remove(digest);
                    if (size == null) {
                        throw new CorruptedDataException(connection.address + " sent Directory " + digest
                                + (seen.containsKey(digest) ? " twice" : ", which no Directory sent before refers to")
                                + " in the closure of " + root);
                    }
                    if (size >= 0 && size != d.size()) {
                        throw new CorruptedDataException(connection.address + " sent Directory " + digest + " of size "
                                + d.size() + ", its parent says " + size);
                    }
                    seen.put(digest, d.size());
                    for (var node : d.entries().values()) {
                        if (node instanceof DirectoryNode child) {
                            Long known = seen.get(child.digest());
                            Long claimed = known != null ? known : expected.putIfAbsent(child.digest(), child.size());
                            if (claimed != null && claimed >= 0 && claimed != child.size()) {
                                throw new CorruptedDataException(connection.address + " sent Directories that disagree on the size of "
                                        + child.digest() + ": " + claimed + " and " + child.size());
                            }
                        }
                    }
                    return d;
                } catch (InvalidDataException e) {
                    stream.close();
                    throw new UncheckedIOException(new CorruptedDataException("invalid Directory from " + connection.address
                            + " in the closure of " + root + ": " + e.getMessage()));
                } catch (CorruptedDataException e) {
                    stream.close();
                    throw new UncheckedIOException(e);
                }
            }
        };
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(checked, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .onClose(stream::close);
    }
}
