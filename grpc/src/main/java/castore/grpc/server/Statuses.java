package castore.grpc.server;

import castore.model.B3Digest;
import castore.model.InvalidDataException;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import castore.service.StoreBusyException;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.logging.Level;
import java.util.logging.Logger;

/** Maps store failures to gRPC statuses; a malformed request never takes the daemon down. */
final class Statuses {
    private static final Logger LOG = Logger.getLogger(Statuses.class.getName());

    private Statuses() {
    }

    /** Parses a digest field, or INVALID_ARGUMENT naming the field. */
    static B3Digest digest(ByteString bytes, String field) {
        if (bytes.size() != B3Digest.LENGTH) {
            throw Status.INVALID_ARGUMENT
                    .withDescription(field + " must be " + B3Digest.LENGTH + " bytes, got " + bytes.size())
                    .asRuntimeException();
        }
        return B3Digest.of(bytes);
    }

    static StatusRuntimeException readOnly(String what) {
        return Status.PERMISSION_DENIED.withDescription("read-only daemon: " + what + " refused").asRuntimeException();
    }

    static StatusRuntimeException invalid(String message) {
        return Status.INVALID_ARGUMENT.withDescription(message).asRuntimeException();
    }

    static StatusRuntimeException notFound(String message) {
        return Status.NOT_FOUND.withDescription(message).asRuntimeException();
    }

    /** The status a failure is reported with; unexpected ones are logged (they are bugs or disk trouble). */
    static StatusRuntimeException of(Throwable t) {
        if (t instanceof UncheckedIOException u) {
            t = u.getCause();
        }
        return switch (t) {
            case StatusRuntimeException s -> s;
            case InvalidDataException i -> invalid(i.getMessage());
            case NotFoundException n -> notFound(n.getMessage());
            case CorruptedDataException c -> {
                LOG.warning("store data corrupted: " + c.getMessage());
                yield Status.DATA_LOSS.withDescription(c.getMessage()).asRuntimeException();
            }
            case StoreBusyException b -> Status.UNAVAILABLE.withDescription(b.getMessage()).asRuntimeException();
            case IOException io -> {
                LOG.log(Level.WARNING, "store I/O error", io);
                yield Status.INTERNAL.withDescription("store I/O error: " + io.getMessage()).asRuntimeException();
            }
            default -> {
                LOG.log(Level.SEVERE, "unexpected error serving a request", t);
                yield Status.INTERNAL.withDescription("internal error: " + t).asRuntimeException();
            }
        };
    }
}
