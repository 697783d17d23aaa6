package castore.s3;

import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.service.CorruptedDataException;
import castore.service.ParallelLookups;
import castore.service.RootService;
import com.google.protobuf.InvalidProtocolBufferException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * Roots as small objects under {@code roots/<hex of name>}, each holding the proto {@code Node}
 * (with the root's name). Updates are conditional on the ETag read before (If-Match, or
 * If-None-Match: * to create), so of two concurrent writers one fails its precondition and
 * retries on the new state instead of silently overwriting it.
 */
final class S3RootService implements RootService {
    private static final int MAX_ATTEMPTS = 20;

    private final Bucket bucket;
    private final WriteLease lease;

    S3RootService(Bucket bucket, WriteLease lease) {
        this.bucket = bucket;
        this.lease = lease;
    }

    private record Current(Node node, String etag) {
    }

    @Override
    public Optional<Node> get(Name name) throws IOException {
        return current(name).map(Current::node);
    }

    private Optional<Current> current(Name name) throws IOException {
        Optional<Bucket.Fetched> fetched = bucket.get(Keys.root(name));
        if (fetched.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new Current(decode(name, fetched.get().bytes()), fetched.get().etag()));
    }

    private static Node decode(Name name, byte[] bytes) throws CorruptedDataException {
        try {
            Node.NamedNode named = Node.fromProto(castore.proto.Node.parseFrom(bytes));
            if (!named.name().equals(name)) {
                throw new CorruptedDataException("root '" + name + "' is corrupted: its object names '" + named.name() + "'");
            }
            return named.node();
        } catch (InvalidProtocolBufferException | InvalidDataException e) {
            throw new CorruptedDataException("root '" + name + "' is corrupted: " + e.getMessage());
        }
    }

    @Override
    public void put(Name name, Node node) throws IOException {
        lease.beforeWrite();
        for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
            Optional<Current> current = current(name);
            if (current.isPresent() && current.get().node().equals(node)) {
                return;
            }
            if (write(name, current, node)) {
                return;
            }
        }
        throw new IOException("root '" + name + "': gave up after " + MAX_ATTEMPTS + " conflicting concurrent updates");
    }

    /**
     * Points {@code name} at {@code update} only if it currently names {@code expected} (empty:
     * absent). False if another writer changed it first.
     */
    public boolean compareAndSet(Name name, Optional<Node> expected, Node update) throws IOException {
        lease.beforeWrite();
        Optional<Current> current = current(name);
        if (!Objects.equals(current.map(Current::node), expected)) {
            return false;
        }
        return write(name, current, update);
    }

    private boolean write(Name name, Optional<Current> current, Node node) throws IOException {
        byte[] body = node.toNodeProto(name).toByteArray();
        return current.isEmpty()
                ? bucket.putIfAbsent(Keys.root(name), body)
                : bucket.putIfMatch(Keys.root(name), body, current.get().etag());
    }

    @Override
    public boolean remove(Name name) throws IOException {
        lease.beforeWrite();
        for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
            Optional<Current> current = current(name);
            if (current.isEmpty()) {
                return false;
            }
            if (bucket.delete(Keys.root(name), current.get().etag())) {
                return true;
            }
        }
        throw new IOException("root '" + name + "': gave up after " + MAX_ATTEMPTS + " conflicting concurrent updates");
    }

    /** Roots read at once while listing, and how many names a listing takes at a time for that. */
    static final int READ_AT_ONCE = 32;
    static final int NAMES_AT_A_TIME = 256;

    /**
     * Every root in name order. Each root is an object of its own, one GET each: they are read
     * {@value #READ_AT_ONCE} at once, {@value #NAMES_AT_A_TIME} names at a time (one after
     * another, 1,000 roots took 2.6 s from S3Proxy on loopback, and would take a round trip each
     * from S3 itself). A root deleted between the listing and its read is left out.
     */
    @Override
    public Stream<Node.NamedNode> list() {
        // Hex keys list in the unsigned byte order of the names they encode.
        Stream<Bucket.Listed> keys = bucket.list(Keys.ROOTS);
        Iterator<Name> names = keys.flatMap(listed -> Keys.rootName(listed.key()).stream()).iterator();
        Iterator<List<Node.NamedNode>> batches = new Iterator<>() {
            @Override
            public boolean hasNext() {
                return names.hasNext();
            }

            @Override
            public List<Node.NamedNode> next() {
                List<Name> batch = new ArrayList<>(NAMES_AT_A_TIME);
                while (batch.size() < NAMES_AT_A_TIME && names.hasNext()) {
                    batch.add(names.next());
                }
                try {
                    List<Optional<Node>> nodes = ParallelLookups.map(batch, READ_AT_ONCE, S3RootService.this::get,
                            "reading the roots of " + bucket.location().display());
                    List<Node.NamedNode> found = new ArrayList<>(batch.size());
                    for (int i = 0; i < batch.size(); i++) {
                        Name name = batch.get(i);
                        nodes.get(i).ifPresent(node -> found.add(new Node.NamedNode(name, node)));
                    }
                    return found;
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        };
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(batches, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .flatMap(List::stream).onClose(keys::close);
    }
}
