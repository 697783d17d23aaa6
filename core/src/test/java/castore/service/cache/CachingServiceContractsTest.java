package castore.service.cache;

import castore.service.BlobService;
import castore.service.BlobServiceContract;
import castore.service.DirectoryService;
import castore.service.DirectoryServiceContract;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.io.TempDir;

/** The shared blob and directory contracts through the cache (disk tier on) in front of memory stores. */
class CachingServiceContractsTest {
    @TempDir
    Path cacheDir;

    private CachingBlobService blobs;
    private CachingDirectoryService directories;

    @BeforeEach
    void open() throws IOException {
        CacheConfig config = CacheConfig.onDisk(cacheDir, 1L << 30);
        DiskCache disk = new DiskCache(cacheDir, config.diskLimit());
        blobs = new CachingBlobService(new MemoryBlobService(), disk, config);
        directories = new CachingDirectoryService(new MemoryDirectoryService(), disk, config);
    }

    @Nested
    class Blobs extends BlobServiceContract {
        @Override
        protected BlobService blobs() {
            return blobs;
        }
    }

    @Nested
    class Directories extends DirectoryServiceContract {
        @Override
        protected DirectoryService directories() {
            return directories;
        }
    }
}
