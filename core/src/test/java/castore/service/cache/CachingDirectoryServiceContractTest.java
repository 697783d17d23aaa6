package castore.service.cache;

import castore.service.DirectoryServiceContract;
import castore.service.DirectoryService;
import castore.service.memory.MemoryDirectoryService;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/** The shared DirectoryService contract through the cache (disk tier on) in front of a memory store. */
class CachingDirectoryServiceContractTest extends DirectoryServiceContract {
    @TempDir
    Path cacheDir;

    private DirectoryService service;

    @BeforeEach
    void open() throws IOException {
        CacheConfig config = CacheConfig.onDisk(cacheDir, 1L << 30);
        service = new CachingDirectoryService(new MemoryDirectoryService(), new DiskCache(cacheDir, config.diskLimit()), config);
    }

    @Override
    protected DirectoryService directories() {
        return service;
    }
}
