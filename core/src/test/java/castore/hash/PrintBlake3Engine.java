package castore.hash;

/** Run by {@link Blake3EngineSelectionTest} in a fresh JVM: prints the engine chosen from the environment. */
public final class PrintBlake3Engine {
    private PrintBlake3Engine() {
    }

    public static void main(String[] args) {
        System.out.println(Blake3.description());
        try {
            System.out.println(Blake3.digest(new byte[0]).toHex());
        } catch (IllegalStateException e) {
            System.out.println("error: " + e.getMessage());
        }
    }
}
