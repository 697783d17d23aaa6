package castore.grpc.server;

import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;

/**
 * Sends a server stream only as fast as the client takes it: the next message is produced when
 * gRPC says the stream is ready, so a slow reader of a 1 GiB blob costs the daemon a flow-control
 * window, not the blob. Callbacks of one call are serialized by gRPC, so no locking.
 */
final class StreamPump<T> {

    /** Produces the messages; {@code next()} returns null at the end. Closed exactly once. */
    interface Source<T> {
        T next() throws Exception;

        /**
         * The message {@code next()} returned last has been handed to gRPC, which has copied it
         * into the transport's buffers: memory it was built from may be used again.
         */
        default void sent() {
        }

        default void close() {
        }
    }

    private final ServerCallStreamObserver<T> call;
    private final Source<T> source;
    private boolean done;

    private StreamPump(ServerCallStreamObserver<T> call, Source<T> source) {
        this.call = call;
        this.source = source;
    }

    static <T> void run(StreamObserver<T> responses, Source<T> source) {
        var call = (ServerCallStreamObserver<T>) responses;
        var pump = new StreamPump<>(call, source);
        call.setOnCancelHandler(pump::finish);
        call.setOnReadyHandler(pump::drain);
        pump.drain();
    }

    private void drain() {
        if (done) {
            return;
        }
        try {
            while (call.isReady()) {
                T next = source.next();
                if (next == null) {
                    finish();
                    call.onCompleted();
                    return;
                }
                call.onNext(next);
                source.sent();
            }
        } catch (Throwable t) {
            finish();
            call.onError(Statuses.of(t));
        }
    }

    private void finish() {
        if (!done) {
            done = true;
            source.close();
        }
    }
}
