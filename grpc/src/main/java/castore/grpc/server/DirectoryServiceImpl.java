package castore.grpc.server;

import castore.grpc.proto.DirectoryServiceGrpc;
import castore.grpc.proto.GetDirectoryRequest;
import castore.grpc.proto.PutDirectoryResponse;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.service.DirectoryService;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.Iterator;
import java.util.stream.Stream;

/** tvix's DirectoryService over any {@link DirectoryService}. */
final class DirectoryServiceImpl extends DirectoryServiceGrpc.DirectoryServiceImplBase {
    private final DirectoryService directories;
    private final boolean readOnly;
    private final long maxClosureBytes;
    private final ClosureBudget budget;

    /** {@code budget}: what all closures being checked may hold at once, shared with DirectoryPartService. */
    DirectoryServiceImpl(DirectoryService directories, boolean readOnly, long maxClosureBytes, ClosureBudget budget) {
        this.directories = directories;
        this.readOnly = readOnly;
        this.maxClosureBytes = maxClosureBytes;
        this.budget = budget;
    }

    @Override
    public void get(GetDirectoryRequest request, StreamObserver<castore.proto.Directory> responses) {
        Stream<Directory> closure;
        try {
            if (request.getByWhatCase() != GetDirectoryRequest.ByWhatCase.DIGEST) {
                throw Statuses.invalid("GetDirectoryRequest: digest not set");
            }
            B3Digest digest = Statuses.digest(request.getDigest(), "digest");
            if (!request.getRecursive()) {
                Directory d = directories.get(digest).orElseThrow(() -> Statuses.notFound("directory " + digest + " not found"));
                responses.onNext(d.toProto());
                responses.onCompleted();
                return;
            }
            closure = directories.getRecursive(digest);
        } catch (Throwable t) {
            responses.onError(Statuses.of(t));
            return;
        }
        Iterator<Directory> it = closure.iterator();
        StreamPump.run(responses, new StreamPump.Source<>() {
            @Override
            public castore.proto.Directory next() {
                return it.hasNext() ? it.next().toProto() : null;
            }

            @Override
            public void close() {
                closure.close();
            }
        });
    }

    @Override
    public StreamObserver<castore.proto.Directory> put(StreamObserver<PutDirectoryResponse> responses) {
        if (readOnly) {
            responses.onError(Statuses.readOnly("DirectoryService.Put"));
            return Uploads.ignoring();
        }
        return receiving(new ClosureValidator(directories, maxClosureBytes, budget), responses);
    }

    /** Feeds a Put's (or PutPart's) Directories to {@code closure}, stores it on completion and answers its root. */
    static StreamObserver<castore.proto.Directory> receiving(ClosureValidator closure, StreamObserver<PutDirectoryResponse> responses) {
        return new StreamObserver<>() {
            private boolean failed;

            @Override
            public void onNext(castore.proto.Directory message) {
                if (failed) {
                    return;
                }
                try {
                    closure.add(message);
                } catch (Throwable t) {
                    fail(t);
                }
            }

            @Override
            public void onError(Throwable t) {
                failed = true; // the client went away: nothing was stored
                closure.release();
            }

            @Override
            public void onCompleted() {
                if (failed) {
                    return;
                }
                try {
                    B3Digest root = closure.store();
                    closure.release();
                    responses.onNext(PutDirectoryResponse.newBuilder().setRootDigest(root.toByteString()).build());
                    responses.onCompleted();
                } catch (Throwable t) {
                    fail(t);
                }
            }

            private void fail(Throwable t) {
                failed = true;
                closure.release();
                responses.onError(t instanceof ClosureValidator.TooLarge big
                        ? Status.RESOURCE_EXHAUSTED.withDescription(big.getMessage()).asRuntimeException()
                        : Statuses.of(t));
            }
        };
    }
}
