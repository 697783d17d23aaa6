package castore.service.cache;

import castore.service.BlobServiceContract;
import castore.service.BlobService;
import castore.service.memory.MemoryBlobService;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/** The shared BlobService contract through the cache (disk tier on) in front of a memory store. */
class CachingBlobServiceContractTest extends BlobServiceContract {
    @TempDir
    Path cacheDir;

    private BlobService service;

    @BeforeEach
    void open() throws IOException {
        CacheConfig config = CacheConfig.onDisk(cacheDir, 1L << 30);
        service = new CachingBlobService(new MemoryBlobService(), new DiskCache(cacheDir, config.diskLimit()), config);
    }

    @Override
    protected BlobService blobs() {
        return service;
    }
}
