package castore.cli;

import castore.service.Store;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

/** A command that reads one node of the store, ROOT[/PATH] (cat, ls, stat): checks, opens read-only, resolves. */
abstract class NodeCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Mixin
    StoreMixin store;

    @Mixin
    NodeSelector target;

    @Override
    public final Integer call() throws Exception {
        Io io = main.io();
        target.check(io); // bad arguments fail before a store is opened
        try (Store s = store.openReadOnly()) {
            show(s, target.resolve(s, io), io);
        }
        io.out().flush();
        return ExitCodes.OK;
    }

    /** Writes what the command shows of {@code selected} to {@code io}. */
    abstract void show(Store store, NodeSelector.Selected selected, Io io) throws Exception;
}
