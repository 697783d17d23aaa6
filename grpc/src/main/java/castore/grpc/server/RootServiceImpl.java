package castore.grpc.server;

import castore.grpc.proto.DeleteRootRequest;
import castore.grpc.proto.DeleteRootResponse;
import castore.grpc.proto.GetRootRequest;
import castore.grpc.proto.ListRootsRequest;
import castore.grpc.proto.PutRootRequest;
import castore.grpc.proto.PutRootResponse;
import castore.grpc.proto.RootServiceGrpc;
import castore.model.Name;
import castore.model.Node;
import castore.service.RootService;
import io.grpc.stub.StreamObserver;
import java.util.Iterator;
import java.util.stream.Stream;

/** castore.v1.RootService: the root catalog. */
final class RootServiceImpl extends RootServiceGrpc.RootServiceImplBase {
    private final RootService roots;
    private final boolean readOnly;

    RootServiceImpl(RootService roots, boolean readOnly) {
        this.roots = roots;
        this.readOnly = readOnly;
    }

    @Override
    public void get(GetRootRequest request, StreamObserver<castore.proto.Node> responses) {
        try {
            Name name = Name.of(request.getName());
            Node node = roots.get(name).orElseThrow(() -> Statuses.notFound("no root named '" + name.display() + "'"));
            responses.onNext(node.toNodeProto(name));
            responses.onCompleted();
        } catch (Throwable t) {
            responses.onError(Statuses.of(t));
        }
    }

    @Override
    public void put(PutRootRequest request, StreamObserver<PutRootResponse> responses) {
        try {
            if (readOnly) {
                throw Statuses.readOnly("RootService.Put");
            }
            // Like every RootService, a root need not point at stored data (imports put the data
            // first; gc and verify deal with the rest).
            Node.NamedNode root = Node.fromProto(request.getRoot());
            roots.put(root.name(), root.node());
            responses.onNext(PutRootResponse.getDefaultInstance());
            responses.onCompleted();
        } catch (Throwable t) {
            responses.onError(Statuses.of(t));
        }
    }

    @Override
    public void list(ListRootsRequest request, StreamObserver<castore.proto.Node> responses) {
        Stream<Node.NamedNode> all;
        try {
            all = roots.list();
        } catch (Throwable t) {
            responses.onError(Statuses.of(t));
            return;
        }
        Iterator<Node.NamedNode> it = all.iterator();
        StreamPump.run(responses, new StreamPump.Source<>() {
            @Override
            public castore.proto.Node next() {
                if (!it.hasNext()) {
                    return null;
                }
                Node.NamedNode n = it.next();
                return n.node().toNodeProto(n.name());
            }

            @Override
            public void close() {
                all.close();
            }
        });
    }

    @Override
    public void delete(DeleteRootRequest request, StreamObserver<DeleteRootResponse> responses) {
        try {
            if (readOnly) {
                throw Statuses.readOnly("RootService.Delete");
            }
            boolean removed = roots.remove(Name.of(request.getName()));
            responses.onNext(DeleteRootResponse.newBuilder().setRemoved(removed).build());
            responses.onCompleted();
        } catch (Throwable t) {
            responses.onError(Statuses.of(t));
        }
    }
}
