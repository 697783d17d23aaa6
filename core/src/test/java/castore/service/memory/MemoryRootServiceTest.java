package castore.service.memory;

import castore.service.RootServiceContract;
import castore.service.RootService;

class MemoryRootServiceTest extends RootServiceContract {
    private final MemoryRootService service = new MemoryRootService();

    @Override
    protected RootService roots() {
        return service;
    }
}
