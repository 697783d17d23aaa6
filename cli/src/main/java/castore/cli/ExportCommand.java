package castore.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** Placeholder until implemented. */
@Command(name = "export", description = "Not implemented yet.")
final class ExportCommand implements Callable<Integer> {
    @Mixin
    StoreMixin store;

    @Override
    public Integer call() {
        throw new CliException(ExitCodes.INTERNAL, "export: not implemented yet");
    }
}
