package castore.grpc.client;

import castore.model.InvalidDataException;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/** Turns gRPC failures into the exceptions the service interfaces promise, naming the server. */
final class Failures {
    private Failures() {
    }

    static Status.Code code(Throwable t) {
        return Status.fromThrowable(t).getCode();
    }

    static boolean isNotFound(Throwable t) {
        return code(t) == Status.Code.NOT_FOUND;
    }

    /** The exception for a failed call; {@code what} names the operation (e.g. "read blob b3:..."). */
    static IOException of(Throwable t, Connection c, String what) {
        t = unwrap(t);
        if (t instanceof IOException io) {
            return io;
        }
        if (t instanceof InvalidDataException invalid) {
            throw invalid;
        }
        if (!(t instanceof StatusRuntimeException) && !(t instanceof StatusException)) {
            return new IOException(what + " at " + c.address + ": " + t, t);
        }
        Status status = Status.fromThrowable(t);
        String detail = status.getDescription() != null ? status.getDescription() : status.getCode().toString();
        return switch (status.getCode()) {
            case NOT_FOUND -> new NotFoundException(what + ": " + detail);
            // The server rejected our data as invalid: the same error a local store gives.
            case INVALID_ARGUMENT -> throw new InvalidDataException(what + " rejected by " + c.address + ": " + detail);
            case DATA_LOSS -> new CorruptedDataException(what + ": " + c.address + " reports corrupted data: " + detail);
            case UNAVAILABLE -> new IOException(what + ": " + c.address + " unavailable: " + detail, t);
            case DEADLINE_EXCEEDED -> new IOException(what + ": " + c.unanswered("did not answer within"), t);
            case PERMISSION_DENIED -> new IOException(what + ": refused by " + c.address + ": " + detail, t);
            default -> new IOException(what + " at " + c.address + " failed: " + status.getCode() + ": " + detail, t);
        };
    }

    static Throwable unwrap(Throwable t) {
        while ((t instanceof ExecutionException || t instanceof CompletionException || t instanceof UncheckedIOException)
                && t.getCause() != null) {
            t = t.getCause();
        }
        if (t instanceof CancellationException) {
            return new IOException("cancelled", t);
        }
        return t;
    }
}
