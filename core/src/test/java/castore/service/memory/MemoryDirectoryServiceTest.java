package castore.service.memory;

import castore.service.DirectoryServiceContract;
import castore.service.DirectoryService;

class MemoryDirectoryServiceTest extends DirectoryServiceContract {
    private final MemoryDirectoryService service = new MemoryDirectoryService();

    @Override
    protected DirectoryService directories() {
        return service;
    }
}
