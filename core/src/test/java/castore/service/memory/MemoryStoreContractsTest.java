package castore.service.memory;

import castore.service.Store;
import castore.service.StoreContracts;

/** The core service contracts against the memory backends. */
class MemoryStoreContractsTest extends StoreContracts {
    @Override
    protected Store openStore() {
        return new Store(new MemoryBlobService(), new MemoryDirectoryService(), new MemoryRootService());
    }
}
