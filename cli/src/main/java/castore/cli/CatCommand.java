package castore.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** Placeholder until implemented. */
@Command(name = "cat", description = "Not implemented yet.")
final class CatCommand implements Callable<Integer> {
    @Mixin
    StoreMixin store;

    @Override
    public Integer call() {
        throw new CliException(ExitCodes.INTERNAL, "cat: not implemented yet");
    }
}
