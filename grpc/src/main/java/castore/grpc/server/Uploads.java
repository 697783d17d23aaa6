package castore.grpc.server;

import castore.service.BlobService;
import castore.service.BlobWriter;
import io.grpc.stub.StreamObserver;
import java.io.IOException;

/** Client-streaming blob uploads: a writer per call, finished only on a clean end of stream. */
final class Uploads {
    private Uploads() {
    }

    /** For a call already failed: drops whatever the client still sends. */
    static <T> StreamObserver<T> ignoring() {
        return new StreamObserver<>() {
            @Override
            public void onNext(T value) {
            }

            @Override
            public void onError(Throwable t) {
            }

            @Override
            public void onCompleted() {
            }
        };
    }

    /**
     * Feeds each message to a {@link BlobWriter}; the blob is stored only when the client
     * completes the stream and {@link #finish} succeeds. A cancelled or failed call closes the
     * writer unfinished, so nothing half-written becomes visible.
     */
    abstract static class Receiver<T, R> implements StreamObserver<T> {
        private final StreamObserver<R> responses;
        private final BlobService blobs;
        private BlobWriter writer;
        private boolean failed;

        Receiver(StreamObserver<R> responses, BlobService blobs) {
            this.responses = responses;
            this.blobs = blobs;
        }

        abstract void accept(T message, BlobWriter writer) throws IOException;

        abstract R finish(BlobWriter writer) throws IOException;

        @Override
        public final void onNext(T message) {
            if (failed) {
                return;
            }
            try {
                accept(message, writer());
            } catch (Throwable t) {
                fail(t);
            }
        }

        private BlobWriter writer() throws IOException {
            if (writer == null) {
                writer = blobs.create();
            }
            return writer;
        }

        @Override
        public final void onError(Throwable t) {
            // The client went away or cancelled: discard.
            failed = true;
            discard();
        }

        @Override
        public final void onCompleted() {
            if (failed) {
                return;
            }
            try {
                R response = finish(writer());
                discard();
                responses.onNext(response);
                responses.onCompleted();
            } catch (Throwable t) {
                fail(t);
            }
        }

        private void fail(Throwable t) {
            failed = true;
            discard();
            responses.onError(Statuses.of(t));
        }

        private void discard() {
            if (writer != null) {
                try {
                    writer.close();
                } catch (IOException ignored) {
                    // nothing was made visible
                }
                writer = null;
            }
        }
    }
}
