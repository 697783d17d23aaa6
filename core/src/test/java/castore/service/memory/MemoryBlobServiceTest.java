package castore.service.memory;

import castore.service.BlobServiceContract;
import castore.service.BlobService;

class MemoryBlobServiceTest extends BlobServiceContract {
    private final MemoryBlobService service = new MemoryBlobService();

    @Override
    protected BlobService blobs() {
        return service;
    }
}
