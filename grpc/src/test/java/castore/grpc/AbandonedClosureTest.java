package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;

import castore.grpc.proto.DirectoryServiceGrpc;
import castore.grpc.proto.PutDirectoryResponse;
import castore.model.Directory;
import castore.model.SymlinkNode;
import castore.service.ClosurePutter;
import castore.service.Store;
import castore.service.Stores;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** A closure the client gives up part way ends its Put call at once, not when the store closes. */
class AbandonedClosureTest {
    /** Completes with how each Put call the server receives ends: OK, or its error's status. */
    private static final class WatchedPuts extends DirectoryServiceGrpc.DirectoryServiceImplBase {
        final CompletableFuture<Status.Code> ended = new CompletableFuture<>();
        final CompletableFuture<Void> received = new CompletableFuture<>();

        @Override
        public StreamObserver<castore.proto.Directory> put(StreamObserver<PutDirectoryResponse> responses) {
            return new StreamObserver<>() {
                private castore.proto.Directory last;

                @Override
                public void onNext(castore.proto.Directory value) {
                    last = value;
                    received.complete(null);
                }

                @Override
                public void onError(Throwable t) {
                    ended.complete(Status.fromThrowable(t).getCode());
                }

                @Override
                public void onCompleted() {
                    ended.complete(Status.Code.OK);
                    responses.onNext(PutDirectoryResponse.newBuilder()
                            .setRootDigest(Directory.fromProto(last).digest().toByteString()).build());
                    responses.onCompleted();
                }
            };
        }
    }

    @Test
    void closingAnUnfinishedClosureCancelsItsCall() throws Exception {
        var puts = new WatchedPuts();
        try (var server = FakeServer.start(puts); Store store = Stores.open(server.address(), TestServer.CLIENT_OPTIONS)) {
            ClosurePutter putter = store.directories().putClosure();
            putter.put(Directory.builder().add("l", SymlinkNode.of("t")).build());
            puts.received.get(10, TimeUnit.SECONDS);
            putter.close(); // the caller failed part way (an import that hit a bad file)
            assertThat(puts.ended.get(10, TimeUnit.SECONDS)).isEqualTo(Status.Code.CANCELLED);
            putter.close(); // idempotent
        }
    }

    @Test
    void closingAFinishedClosureLeavesItsAnswer() throws Exception {
        var puts = new WatchedPuts();
        try (var server = FakeServer.start(puts); Store store = Stores.open(server.address(), TestServer.CLIENT_OPTIONS)) {
            Directory d = Directory.builder().add("l", SymlinkNode.of("t")).build();
            try (ClosurePutter putter = store.directories().putClosure()) {
                putter.put(d);
                assertThat(putter.finish()).isEqualTo(d.digest());
            }
            assertThat(puts.ended.get(10, TimeUnit.SECONDS)).isEqualTo(Status.Code.OK);
        }
    }
}
