package castore.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** Placeholder until implemented. */
@Command(name = "mount", description = "Not implemented yet.")
final class MountCommand implements Callable<Integer> {
    @Mixin
    StoreMixin store;

    @Override
    public Integer call() {
        throw new CliException(ExitCodes.INTERNAL, "mount: not implemented yet");
    }
}
