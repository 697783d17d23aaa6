package castore.grpc.server;

import castore.grpc.proto.DeleteRootRequest;
import castore.grpc.proto.DeleteRootResponse;
import castore.grpc.proto.GetRootRequest;
import castore.grpc.proto.ListRootsRequest;
import castore.grpc.proto.PutRootRequest;
import castore.grpc.proto.PutRootResponse;
import castore.grpc.proto.RootServiceGrpc;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.BlobService;
import castore.service.DirectoryService;
import castore.service.RootService;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.Iterator;
import java.util.stream.Stream;

/** castore.v1.RootService: the root catalog. A root may only point at content that is stored. */
final class RootServiceImpl extends RootServiceGrpc.RootServiceImplBase {
    private final RootService roots;
    private final DirectoryService directories;
    private final BlobService blobs;
    private final boolean readOnly;

    RootServiceImpl(RootService roots, DirectoryService directories, BlobService blobs, boolean readOnly) {
        this.roots = roots;
        this.directories = directories;
        this.blobs = blobs;
        this.readOnly = readOnly;
    }

    @Override
    public void get(GetRootRequest request, StreamObserver<castore.proto.Node> responses) {
        try {
            Name name = Name.of(request.getName());
            Node node = roots.get(name).orElseThrow(() -> Statuses.notFound("no root named '" + name + "'"));
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
            Node.NamedNode root = Node.fromProto(request.getRoot());
            checkStored(root);
            roots.put(root.name(), root.node());
            responses.onNext(PutRootResponse.getDefaultInstance());
            responses.onCompleted();
        } catch (Throwable t) {
            responses.onError(Statuses.of(t));
        }
    }

    private void checkStored(Node.NamedNode root) throws IOException {
        switch (root.node()) {
            case DirectoryNode d -> {
                Directory stored = directories.get(d.digest()).orElseThrow(() -> new InvalidDataException(
                        "root '" + root.name() + "' refers to directory " + d.digest() + ", which is not stored"));
                if (stored.size() != d.size()) {
                    throw new InvalidDataException("root '" + root.name() + "' says directory " + d.digest()
                            + " has size " + d.size() + ", but it has size " + stored.size());
                }
            }
            case FileNode f -> {
                if (!blobs.has(f.digest())) {
                    throw new InvalidDataException("root '" + root.name() + "' refers to blob " + f.digest() + ", which is not stored");
                }
            }
            case SymlinkNode s -> {
            }
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
