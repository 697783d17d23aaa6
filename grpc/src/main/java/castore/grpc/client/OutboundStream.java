package castore.grpc.client;

import io.grpc.ClientCall;
import io.grpc.MethodDescriptor;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ClientResponseObserver;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A client stream sent with flow control: {@link #send} waits until gRPC can take the message,
 * at most the store timeout, so an upload never buffers unboundedly and a vanished server makes
 * it fail in bounded time. {@link #cancel} abandons the call: the server then discards it.
 */
final class OutboundStream<Q, R> {
    private final Connection connection;
    private final String what;
    private final CompletableFuture<R> response = new CompletableFuture<>();
    private final Object readiness = new Object();
    private volatile ClientCallStreamObserver<Q> requests;

    private OutboundStream(Connection connection, String what) {
        this.connection = connection;
        this.what = what;
    }

    static <Q, R> OutboundStream<Q, R> open(Connection connection, MethodDescriptor<Q, R> method, String what) {
        var stream = new OutboundStream<Q, R>(connection, what);
        ClientCall<Q, R> call = connection.channel.newCall(method, connection.streamOptions());
        ClientCalls.asyncClientStreamingCall(call, stream.new Responses());
        return stream;
    }

    void send(Q message) throws IOException {
        long deadline = System.nanoTime() + connection.timeout.toNanos();
        synchronized (readiness) {
            while (!requests.isReady()) {
                if (response.isDone()) {
                    throw failure();
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    cancel();
                    throw new IOException(what + ": " + connection.address + " took no data for " + connection.timeout.toMillis() + " ms");
                }
                try {
                    readiness.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                } catch (InterruptedException e) {
                    cancel();
                    Thread.currentThread().interrupt();
                    throw new IOException(what + ": interrupted", e);
                }
            }
        }
        requests.onNext(message);
    }

    /** Ends the stream and waits up to {@code wait} for the server's answer. */
    R finish(Duration wait) throws IOException {
        requests.onCompleted();
        try {
            R answer = response.get(wait.toNanos(), TimeUnit.NANOSECONDS);
            if (answer == null) { // gRPC lets a server close with OK and no message
                throw new IOException(what + ": " + connection.address + " ended the call without an answer");
            }
            return answer;
        } catch (TimeoutException e) {
            cancel();
            throw new IOException(what + ": " + connection.address + " did not answer within " + wait.toMillis() + " ms");
        } catch (ExecutionException e) {
            throw failure();
        } catch (InterruptedException e) {
            cancel();
            Thread.currentThread().interrupt();
            throw new IOException(what + ": interrupted", e);
        }
    }

    void cancel() {
        requests.cancel(what + " abandoned", null);
    }

    private IOException failure() {
        try {
            response.getNow(null);
            return new IOException(what + ": stream ended early");
        } catch (Exception e) {
            return Failures.of(e, connection, what);
        }
    }

    private void signal() {
        synchronized (readiness) {
            readiness.notifyAll();
        }
    }

    private final class Responses implements ClientResponseObserver<Q, R> {
        @Override
        public void beforeStart(ClientCallStreamObserver<Q> stream) {
            requests = stream;
            stream.setOnReadyHandler(OutboundStream.this::signal);
        }

        @Override
        public void onNext(R value) {
            response.complete(value);
        }

        @Override
        public void onError(Throwable t) {
            response.completeExceptionally(t);
            signal();
        }

        @Override
        public void onCompleted() {
            response.complete(null);
            signal();
        }
    }
}
