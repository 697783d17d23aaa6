package castore.cli;

import castore.ingest.posix.Display;
import castore.model.Name;
import castore.service.NotFoundException;
import castore.service.Store;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "rm", description = "Remove root names. The data stays until 'castore gc' finds nothing refers to it.")
final class RmCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Mixin
    StoreMixin store;

    @Parameters(arity = "1..*", paramLabel = "ROOT")
    List<String> roots;

    @Override
    public Integer call() throws Exception {
        List<Name> names = roots.stream().map(r -> Name.of(main.io().bytes(r))).toList();
        try (Store s = store.openExisting()) {
            for (Name n : names) {
                if (s.roots().get(n).isEmpty()) {
                    throw new NotFoundException("no root named '" + Display.escape(n.bytesUnsafe()) + "'");
                }
            }
            for (Name n : names) {
                s.roots().remove(n);
            }
        }
        return ExitCodes.OK;
    }
}
