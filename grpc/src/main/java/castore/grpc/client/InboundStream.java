package castore.grpc.client;

import io.grpc.Context;
import io.grpc.MethodDescriptor;
import io.grpc.stub.ClientCalls;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A server stream read through a blocking iterator. A stream's length is unknown, so instead of
 * a deadline it has an idle timeout: if the server sends nothing for the store timeout while we
 * wait for it, the call is cancelled. Time the consumer spends elsewhere does not count.
 * Failures surface as {@link UncheckedIOException} (iterator methods cannot throw IOException).
 */
final class InboundStream<T> implements Iterator<T>, AutoCloseable {
    private final Connection connection;
    private final String what;
    private final Context.CancellableContext context;
    private final Iterator<T> responses;
    private final ScheduledFuture<?> watchdog;
    private volatile long waitingSince;
    private volatile boolean timedOut;
    private boolean ended;

    private <Q> InboundStream(Connection connection, MethodDescriptor<Q, T> method, Q request, String what) {
        this.connection = connection;
        this.what = what;
        this.context = Connection.ownContext();
        // The call belongs to our cancellable context, so the watchdog and close() can end it.
        // Its callbacks run on the transport's thread: they only decode a message and queue it for
        // the blocked reader (one message asked for at a time), and grpc's default executor would
        // add a hand-over between threads to every message and to the close (a cold walk over a
        // remote store is one such call per directory). The price: a rare huge Directory (up to
        // the 64 MiB message limit) is decoded on the connection's event loop, which other calls
        // on it then wait for.
        Context previous = context.attach();
        try {
            this.responses = ClientCalls.blockingServerStreamingCall(connection.channel, method,
                    connection.streamOptions().withExecutor(Runnable::run), request);
        } finally {
            context.detach(previous);
        }
        long period = Math.max(10, connection.timeout.toMillis() / 4);
        this.watchdog = connection.scheduler.scheduleWithFixedDelay(this::checkIdle, period, period, TimeUnit.MILLISECONDS);
    }

    static <Q, T> InboundStream<T> open(Connection connection, MethodDescriptor<Q, T> method, Q request, String what) {
        return new InboundStream<>(connection, method, request, what);
    }

    private void checkIdle() {
        long since = waitingSince;
        if (since != 0 && System.nanoTime() - since > connection.timeout.toNanos()) {
            timedOut = true;
            context.cancel(new TimeoutException("no data for " + connection.timeout.toMillis() + " ms"));
        }
    }

    @Override
    public boolean hasNext() {
        if (ended) {
            return false;
        }
        waitingSince = System.nanoTime();
        try {
            boolean more = responses.hasNext();
            if (!more) {
                ended = true;
                watchdog.cancel(false);
            }
            return more;
        } catch (RuntimeException e) {
            close();
            if (timedOut) {
                throw new UncheckedIOException(new IOException(what + ": " + connection.unanswered("sent nothing for"), e));
            }
            throw new UncheckedIOException(Failures.of(e, connection, what));
        } finally {
            waitingSince = 0;
        }
    }

    @Override
    public T next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        return responses.next();
    }

    /** Cancels the call if it is still running. */
    @Override
    public void close() {
        ended = true;
        watchdog.cancel(false);
        context.cancel(null);
    }
}
