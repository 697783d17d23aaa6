package castore.grpc.client;

import castore.grpc.proto.DeleteRootRequest;
import castore.grpc.proto.GetRootRequest;
import castore.grpc.proto.ListRootsRequest;
import castore.grpc.proto.PutRootRequest;
import castore.grpc.proto.RootServiceGrpc;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.service.CorruptedDataException;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Optional;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/** The root catalog on a castore daemon (castore.v1.RootService; tvix servers do not have it). */
final class RemoteRootService implements castore.service.RootService {
    private final Connection connection;

    RemoteRootService(Connection connection) {
        this.connection = connection;
    }

    @Override
    public Optional<Node> get(Name name) throws IOException {
        try {
            var proto = ClientCalls.blockingUnaryCall(connection.channel, RootServiceGrpc.getGetMethod(),
                    connection.unaryOptions(), GetRootRequest.newBuilder().setName(name.toByteString()).build());
            Node.NamedNode root = received(proto);
            if (!root.name().equals(name)) {
                throw new CorruptedDataException(connection.address + " answered root '" + root.name() + "' for '" + name + "'");
            }
            return Optional.of(root.node());
        } catch (StatusRuntimeException e) {
            if (Failures.isNotFound(e)) {
                return Optional.empty();
            }
            throw Failures.of(e, connection, "get root '" + name + "'");
        }
    }

    private Node.NamedNode received(castore.proto.Node proto) throws CorruptedDataException {
        try {
            return Node.fromProto(proto);
        } catch (InvalidDataException e) {
            throw new CorruptedDataException("invalid root node from " + connection.address + ": " + e.getMessage());
        }
    }

    @Override
    public void put(Name name, Node node) throws IOException {
        try {
            ClientCalls.blockingUnaryCall(connection.channel, RootServiceGrpc.getPutMethod(), connection.unaryOptions(),
                    PutRootRequest.newBuilder().setRoot(node.toNodeProto(name)).build());
        } catch (StatusRuntimeException e) {
            throw Failures.of(e, connection, "put root '" + name + "'");
        }
    }

    @Override
    public boolean remove(Name name) throws IOException {
        try {
            return ClientCalls.blockingUnaryCall(connection.channel, RootServiceGrpc.getDeleteMethod(), connection.unaryOptions(),
                    DeleteRootRequest.newBuilder().setName(name.toByteString()).build()).getRemoved();
        } catch (StatusRuntimeException e) {
            throw Failures.of(e, connection, "remove root '" + name + "'");
        }
    }

    /** Streams the roots, checking each is valid and that names come in strictly increasing order. */
    @Override
    public Stream<Node.NamedNode> list() {
        var stream = InboundStream.open(connection, RootServiceGrpc.getListMethod(), ListRootsRequest.getDefaultInstance(), "list roots");
        Iterator<Node.NamedNode> checked = new Iterator<>() {
            private Name previous;

            @Override
            public boolean hasNext() {
                return stream.hasNext();
            }

            @Override
            public Node.NamedNode next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                try {
                    Node.NamedNode root = received(stream.next());
                    if (previous != null && previous.compareTo(root.name()) >= 0) {
                        throw new CorruptedDataException(connection.address + " listed root '" + root.name() + "' after '" + previous + "'");
                    }
                    previous = root.name();
                    return root;
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
