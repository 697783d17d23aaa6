package castore.cli;

/** Every command on the embedded local store in a temporary directory. */
class LocalCommandsTest extends CommandsTest {
    @Override
    String storeAddress() {
        return tmp.resolve("store").toString();
    }
}
