package castore.fs;

import castore.ingest.Importer;
import castore.model.Name;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.nio.charset.StandardCharsets;

/** Run by {@link ImportedTreeTest} in another process: imports PATH into STORE as root NAME. */
public final class ImportMain {
    private ImportMain() {
    }

    public static void main(String[] args) throws Exception {
        try (Store store = Stores.open(args[0], StoreOptions.DEFAULT)) {
            var node = new Importer(store.blobs(), store.directories(), 1).importPath(args[1].getBytes(StandardCharsets.UTF_8));
            store.roots().put(Name.of(args[2]), node);
        }
    }
}
