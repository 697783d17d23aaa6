package castore.build;

import java.io.IOException;
import java.io.OutputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Enumeration;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Opcodes;

/**
 * Rewrites the class files of a jar that are older than Java 8's format (52) to that format,
 * with the stack map frames it requires, in place. Why: the JDK's AOT cache leaves out classes
 * older than version 50 ("Old class has been linked"), so every castore command loaded and
 * verified picocli's ~170 Java 5 classes from its jar (60-80 ms on one CPU). Only the format
 * changes: the bytecode is copied as it is and the frames are computed by ASM; a jar with nothing
 * older is left untouched, so running it twice is harmless.
 *
 * <p>Usage: {@code ModernClassFiles JAR...}
 */
public final class ModernClassFiles {
    static final int TARGET = Opcodes.V1_8;

    private ModernClassFiles() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length == 0) {
            System.err.println("usage: ModernClassFiles JAR...");
            System.exit(2);
        }
        for (String arg : args) {
            int rewritten = rewrite(Path.of(arg));
            System.out.println("ModernClassFiles: " + arg + ": " + rewritten + " class files rewritten to version " + TARGET);
        }
    }

    /** Rewrites {@code jar} in place; returns how many class files changed. */
    public static int rewrite(Path jar) throws IOException {
        Path tmp = jar.resolveSibling(jar.getFileName() + ".tmp");
        int rewritten = 0;
        // Frames need the common superclass of two types, so the jar's own classes must be loadable.
        try (ZipFile in = new ZipFile(jar.toFile());
             URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, ModernClassFiles.class.getClassLoader());
             OutputStream file = Files.newOutputStream(tmp);
             ZipOutputStream out = new ZipOutputStream(file)) {
            for (Enumeration<? extends ZipEntry> entries = in.entries(); entries.hasMoreElements(); ) {
                ZipEntry entry = entries.nextElement();
                byte[] bytes = in.getInputStream(entry).readAllBytes();
                if (!entry.isDirectory() && entry.getName().endsWith(".class") && version(bytes) < TARGET) {
                    bytes = modernise(bytes, loader);
                    rewritten++;
                }
                ZipEntry copy = new ZipEntry(entry.getName());
                copy.setTime(entry.getTime());
                out.putNextEntry(copy);
                out.write(bytes);
                out.closeEntry();
            }
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        if (rewritten == 0) {
            Files.delete(tmp);
        } else {
            Files.move(tmp, jar, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        return rewritten;
    }

    /** The major version of a class file. */
    static int version(byte[] classFile) {
        return (classFile[6] & 0xff) << 8 | classFile[7] & 0xff;
    }

    static byte[] modernise(byte[] classFile, ClassLoader loader) {
        ClassReader reader = new ClassReader(classFile);
        ClassWriter writer = new ClassWriter(ClassWriter.COMPUTE_FRAMES) {
            @Override
            protected ClassLoader getClassLoader() {
                return loader;
            }
        };
        // COMPUTE_FRAMES refuses jsr/ret (gone from class files since version 51) with an
        // exception, so an input that needs more than a format change fails the build.
        reader.accept(new ClassVisitor(Opcodes.ASM9, writer) {
            @Override
            public void visit(int version, int access, String name, String signature, String superName, String[] interfaces) {
                super.visit(TARGET, access, name, signature, superName, interfaces);
            }
        }, ClassReader.SKIP_FRAMES);
        return writer.toByteArray();
    }
}
