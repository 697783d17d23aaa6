package castore.cli;

import castore.model.FileNode;
import castore.service.Store;
import castore.service.StoreBusyException;
import castore.service.StoreMaintenance;
import java.io.Closeable;
import java.io.IOException;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

@Command(name = "gc", description = {
    "Delete every blob, chunk and Directory that no root reaches.",
    "Runs only while nothing writes to the store: it takes the store's lock exclusively, without waiting, and every "
            + "process writing to the store holds that lock shared. So gc is refused (exit 6) while an import runs, "
            + "and an import started during a gc fails at once (exit 6) instead of writing what gc could sweep.",
})
final class GcCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Mixin
    StoreMixin store;

    @Override
    public Integer call() throws Exception {
        long start = System.nanoTime();
        // What is live comes from the roots of --store; a service of another store would be swept
        // by roots it does not hold (its own roots' data unknown to this walk).
        String override = store.blobService != null ? "--blob-service" : store.directoryService != null ? "--directory-service" : null;
        if (override != null) {
            throw new CliException(ExitCodes.INVALID, "gc collects a store's garbage by that store's own roots: run it with --store"
                    + " for each store, not with " + override);
        }
        try (Store s = store.openExisting()) {
            StoreMaintenance maintenance = s.maintenance().orElseThrow(() -> new CliException(ExitCodes.INVALID,
                    "gc is not supported by the store at " + store.storeAddress()));
            Closeable exclusive;
            try {
                exclusive = maintenance.exclusive();
            } catch (StoreBusyException e) {
                throw new CliException(ExitCodes.BUSY, "the store is busy (" + e.getMessage()
                        + "): gc runs only while no import writes to it; try again when the import has finished");
            }
            try (exclusive) {
                Reachability live = new Reachability();
                live.walkAll(s, store.anyRemote() ? Reachability.REMOTE_FETCHES : 1, new Reachability.Visitor() {
                    @Override
                    public void file(FileNode file, String where) {
                    }

                    @Override
                    public void problem(String message) throws IOException {
                        // What a missing Directory refers to is unknown: sweeping could delete live data.
                        throw new IOException("cannot collect garbage: " + message + "; run 'castore verify'");
                    }
                });
                StoreMaintenance.SweepResult result = maintenance.sweep(live.blobs(), live.directories());
                main.io().err().printf(Locale.ROOT, "gc: kept %s and %s reachable from %s; removed %s, freed %s, in %.2f s%n",
                        Nodes.count(live.directories().size(), "directory"), Nodes.count(live.blobs().size(), "blob"),
                        Nodes.count(live.roots(), "root"), Nodes.count(result.objectsRemoved(), "object"),
                        Nodes.bytes(result.bytesFreed()), (System.nanoTime() - start) / 1e9);
            }
        }
        return ExitCodes.OK;
    }
}
