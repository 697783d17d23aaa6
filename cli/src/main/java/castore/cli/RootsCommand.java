package castore.cli;

import castore.model.Node;
import castore.service.Store;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParentCommand;

@Command(name = "roots", description = "List the roots: NAME<TAB>KIND<TAB>DIGEST-or-TARGET<TAB>SIZE, in name order.")
final class RootsCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Mixin
    StoreMixin store;

    @Override
    public Integer call() throws Exception {
        try (Store s = store.openReadOnly(); Stream<Node.NamedNode> roots = s.roots().list()) {
            roots.forEach(r -> main.io().out().println(Nodes.row(r.name(), r.node())));
        }
        return ExitCodes.OK;
    }
}
