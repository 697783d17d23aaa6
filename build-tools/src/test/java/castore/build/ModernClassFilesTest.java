package castore.build;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Label;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;

class ModernClassFilesTest {
    @TempDir
    Path tmp;

    /** A Java 5 class whose method has a loop and a branch, so the new format needs frames: {@code static int sum(int n)}. */
    static byte[] java5Class() {
        ClassWriter w = new ClassWriter(ClassWriter.COMPUTE_MAXS);
        w.visit(Opcodes.V1_5, Opcodes.ACC_PUBLIC | Opcodes.ACC_SUPER, "old/Sum", null, "java/lang/Object", null);
        MethodVisitor m = w.visitMethod(Opcodes.ACC_PUBLIC | Opcodes.ACC_STATIC, "sum", "(I)I", null, null);
        m.visitCode();
        Label loop = new Label();
        Label done = new Label();
        m.visitInsn(Opcodes.ICONST_0);
        m.visitVarInsn(Opcodes.ISTORE, 1);        // total = 0
        m.visitLabel(loop);
        m.visitVarInsn(Opcodes.ILOAD, 0);
        m.visitJumpInsn(Opcodes.IFLE, done);      // while (n > 0)
        m.visitIincInsn(1, 0);
        m.visitVarInsn(Opcodes.ILOAD, 1);
        m.visitVarInsn(Opcodes.ILOAD, 0);
        m.visitInsn(Opcodes.IADD);
        m.visitVarInsn(Opcodes.ISTORE, 1);        // total += n
        m.visitIincInsn(0, -1);                   // n--
        m.visitJumpInsn(Opcodes.GOTO, loop);
        m.visitLabel(done);
        m.visitVarInsn(Opcodes.ILOAD, 1);
        m.visitInsn(Opcodes.IRETURN);
        m.visitMaxs(0, 0);
        m.visitEnd();
        w.visitEnd();
        return w.toByteArray();
    }

    static Path jar(Path path, String entry, byte[] content, String otherEntry, byte[] other) throws IOException {
        try (OutputStream file = Files.newOutputStream(path); ZipOutputStream out = new ZipOutputStream(file)) {
            out.putNextEntry(new ZipEntry(entry));
            out.write(content);
            out.closeEntry();
            out.putNextEntry(new ZipEntry(otherEntry));
            out.write(other);
            out.closeEntry();
        }
        return path;
    }

    static List<String> classNames(Path jar) throws IOException {
        List<String> names = new ArrayList<>();
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            for (ZipEntry e : Collections.list(zip.entries())) {
                if (e.getName().endsWith(".class") && !e.getName().endsWith("module-info.class")) {
                    names.add(e.getName().substring(0, e.getName().length() - 6).replace('/', '.'));
                }
            }
        }
        return names;
    }

    static int versionIn(Path jar, String entry) throws IOException {
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            return ModernClassFiles.version(zip.getInputStream(zip.getEntry(entry)).readAllBytes());
        }
    }

    @Test
    void aJava5ClassGetsTheJava8FormatRunsUnderTheStrictVerifierAndTheRestIsCopied() throws Exception {
        byte[] old = java5Class();
        assertThat(ModernClassFiles.version(old)).isEqualTo(49);
        Path jar = jar(tmp.resolve("old.jar"), "old/Sum.class", old, "META-INF/notes.txt", "kept".getBytes());

        assertThat(ModernClassFiles.rewrite(jar)).isEqualTo(1);
        assertThat(versionIn(jar, "old/Sum.class")).isEqualTo(52);
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            assertThat(zip.getInputStream(zip.getEntry("META-INF/notes.txt")).readAllBytes()).isEqualTo("kept".getBytes());
        }
        // Version 52 is verified by type checking only: wrong or missing frames would be a VerifyError here.
        try (URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, null)) {
            Method sum = Class.forName("old.Sum", true, loader).getMethod("sum", int.class);
            assertThat(sum.invoke(null, 4)).isEqualTo(10);
        }
        assertThat(ModernClassFiles.rewrite(jar)).as("a second run changes nothing").isZero();
        assertThat(tmp.resolve("old.jar.tmp")).doesNotExist();
    }

    @Test
    void picocliRewrittenLoadsVerifiesAndParsesACommandLine() throws Exception {
        Path original = Path.of(picocli.CommandLine.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Path jar = Files.copy(original, tmp.resolve("picocli.jar"));
        List<String> names = classNames(jar);

        assertThat(ModernClassFiles.rewrite(jar)).isEqualTo(names.size()).isGreaterThan(100);
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            for (String name : names) {
                byte[] bytes = zip.getInputStream(zip.getEntry(name.replace('.', '/') + ".class")).readAllBytes();
                assertThat(ModernClassFiles.version(bytes)).as(name).isEqualTo(52);
            }
        }
        // Initialising every class links, and so verifies, every method of the rewritten jar.
        try (URLClassLoader loader = new URLClassLoader(new URL[] {jar.toUri().toURL()}, null)) {
            for (String name : names) {
                Class.forName(name, true, loader);
            }
            Class<?> commandLine = loader.loadClass("picocli.CommandLine");
            Class<?> spec = loader.loadClass("picocli.CommandLine$Model$CommandSpec");
            Class<?> optionSpec = loader.loadClass("picocli.CommandLine$Model$OptionSpec");
            Object command = spec.getMethod("create").invoke(null);
            Object builder = optionSpec.getMethod("builder", String.class, String[].class).invoke(null, "--count", new String[0]);
            Method type = builder.getClass().getMethod("type", Class.class);
            type.setAccessible(true); // declared on a package-private superclass
            type.invoke(builder, int.class);
            Object option = builder.getClass().getMethod("build").invoke(builder);
            spec.getMethod("addOption", optionSpec).invoke(command, option);
            Object cli = commandLine.getConstructor(Object.class).newInstance(command);
            Object parsed = commandLine.getMethod("parseArgs", String[].class).invoke(cli, (Object) new String[] {"--count", "7"});
            Object value = parsed.getClass().getMethod("matchedOptionValue", String.class, Object.class).invoke(parsed, "--count", 0);
            assertThat(value).isEqualTo(7);
        }
    }
}
