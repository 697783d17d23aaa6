package castore.grpc.server;

import castore.service.BlobService;
import castore.service.DirectoryService;
import io.grpc.BindableService;

/** The daemon's service implementations, for tests that assemble servers of their own. */
public final class TestServices {
    private TestServices() {
    }

    public static BindableService blobs(BlobService blobs) {
        return new BlobServiceImpl(blobs, false);
    }

    public static BindableService directories(DirectoryService directories) {
        return new DirectoryServiceImpl(directories, false, CastoreServer.MAX_CLOSURE_BYTES, ClosureBudget.ofHeap());
    }
}
