package castore.grpc;

import castore.model.B3Digest;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ForwardingBlobService;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/** Wraps a BlobService and counts what its writers do: bytes received, finished, discarded. */
final class RecordingBlobService extends ForwardingBlobService {
    final AtomicLong bytesWritten = new AtomicLong();
    final AtomicInteger finished = new AtomicInteger();
    final AtomicInteger discarded = new AtomicInteger();

    RecordingBlobService(BlobService inner) {
        super(inner);
    }

    @Override
    public BlobWriter create() throws IOException {
        BlobWriter writer = inner.create();
        return new BlobWriter() {
            private boolean done;

            @Override
            public void write(ByteBuffer data) throws IOException {
                bytesWritten.addAndGet(data.remaining());
                writer.write(data);
            }

            @Override
            public B3Digest finish() throws IOException {
                B3Digest d = writer.finish();
                if (!done) {
                    done = true;
                    finished.incrementAndGet();
                }
                return d;
            }

            @Override
            public long size() {
                return writer.size();
            }

            @Override
            public void close() throws IOException {
                if (!done) {
                    done = true;
                    discarded.incrementAndGet();
                }
                writer.close();
            }
        };
    }

    /** Polls until {@code condition} holds (the server works asynchronously, a child JVM starts); fails after 60 s. */
    static void await(String what, java.util.concurrent.Callable<Boolean> condition) throws Exception {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (!condition.call()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(10);
        }
    }
}
