package castore.cli;

import castore.model.FileNode;
import castore.service.Store;
import castore.service.StoreBusyException;
import castore.service.StoreMaintenance;
import java.io.Closeable;
import java.io.IOException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

@Command(name = "gc", description = {
    "Delete every blob, chunk and Directory that no root reaches.",
    "Runs only while nothing writes to the store: it takes the store's exclusive lock, which every import holds "
            + "shared while it writes, so gc is refused (exit 6) while an import runs, and an import waits for "
            + "nothing: it fails fast with the same message while gc runs.",
})
final class GcCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Mixin
    StoreMixin store;

    @Override
    public Integer call() throws Exception {
        long start = System.nanoTime();
        try (Store s = store.open()) {
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
                live.walkAll(s, new Reachability.Visitor() {
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
                main.io().err().printf("gc: %d roots reach %d directories and %d blobs; removed %d objects, freed %s, in %.2f s%n",
                        live.roots(), live.directories().size(), live.blobs().size(), result.objectsRemoved(),
                        Nodes.bytes(result.bytesFreed()), (System.nanoTime() - start) / 1e9);
            }
        }
        return ExitCodes.OK;
    }
}
