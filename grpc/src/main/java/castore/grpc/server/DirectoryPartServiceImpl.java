package castore.grpc.server;

import castore.grpc.proto.DirectoryPartServiceGrpc;
import castore.grpc.proto.PartLimitRequest;
import castore.grpc.proto.PartLimitResponse;
import castore.grpc.proto.PutDirectoryResponse;
import castore.service.DirectoryService;
import io.grpc.stub.StreamObserver;

/**
 * castore's DirectoryPartService: closures in parts, each checked as a Put's closure is (valid
 * Directories, children sent before or stored) and stored on its own, so that no closure is too
 * large to put while the daemon holds at most {@code maxPartBytes} of it at a time.
 */
final class DirectoryPartServiceImpl extends DirectoryPartServiceGrpc.DirectoryPartServiceImplBase {
    private final DirectoryService directories;
    private final boolean readOnly;
    private final long maxPartBytes;
    private final ClosureBudget budget;

    DirectoryPartServiceImpl(DirectoryService directories, boolean readOnly, long maxPartBytes, ClosureBudget budget) {
        this.directories = directories;
        this.readOnly = readOnly;
        this.maxPartBytes = maxPartBytes;
        this.budget = budget;
    }

    @Override
    public void partLimit(PartLimitRequest request, StreamObserver<PartLimitResponse> responses) {
        // A part no larger than the budget fits it whenever no other closure is being checked.
        responses.onNext(PartLimitResponse.newBuilder().setMaxBytes(Math.min(maxPartBytes, budget.limit())).build());
        responses.onCompleted();
    }

    @Override
    public StreamObserver<castore.proto.Directory> putPart(StreamObserver<PutDirectoryResponse> responses) {
        if (readOnly) {
            responses.onError(Statuses.readOnly("DirectoryPartService.PutPart"));
            return Uploads.ignoring();
        }
        return DirectoryServiceImpl.receiving(new ClosureValidator(directories, maxPartBytes, true, budget), responses);
    }
}
