using System.Reflection;
using System.Text;

namespace MmapQueues.Tests;

/// <summary>
/// The public surface of the library, listed in api/MmapQueue.txt. A change to it fails this test until the
/// listing is regenerated on purpose (and so shows up in review):
/// <c>MMAPQ_REGEN_API=$PWD/api dotnet test tests/unit --filter PublicApi</c>.
/// </summary>
public class PublicApiTests
{
    [Fact]
    public void PublicApiMatchesTheCheckedInListing()
    {
        string actual = Describe(typeof(MmapQueue).Assembly);
        if (Environment.GetEnvironmentVariable("MMAPQ_REGEN_API") is { Length: > 0 } dir)
            File.WriteAllText(Path.Combine(dir, "MmapQueue.txt"), actual);
        string expected = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "api", "MmapQueue.txt"));
        Assert.True(expected == actual, "The public API changed. Review the diff, then regenerate api/MmapQueue.txt:\n" + Diff(expected, actual));
    }

    private static string Describe(Assembly assembly)
    {
        var sb = new StringBuilder();
        foreach (Type t in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            string kind = t.IsEnum ? "enum" : t.IsValueType ? "struct" : t.IsInterface ? "interface" : t.IsAbstract && t.IsSealed ? "static class" : "class";
            string bases = t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum) ? " : " + Name(b) : "";
            sb.Append(kind).Append(' ').Append(Name(t)).Append(bases).Append('\n');
            if (t.IsEnum)
            {
                foreach (string n in Enum.GetNames(t)) sb.Append("  ").Append(n).Append('\n');
                continue;
            }
            const BindingFlags flags = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            var lines = new List<string>();
            foreach (MemberInfo m in t.GetMembers(flags))
            {
                switch (m)
                {
                    case ConstructorInfo c:
                        lines.Add($"  ctor({Params(c)})");
                        break;
                    case MethodInfo mi when !mi.IsSpecialName:
                        lines.Add($"  {(mi.IsStatic ? "static " : "")}{Name(mi.ReturnType)} {mi.Name}{Generic(mi)}({Params(mi)})");
                        break;
                    case PropertyInfo p:
                        lines.Add($"  {Name(p.PropertyType)} {p.Name} {{{(p.GetMethod?.IsPublic == true ? " get;" : "")}{(p.SetMethod?.IsPublic == true ? " set;" : "")} }}");
                        break;
                    case FieldInfo f:
                        lines.Add($"  {(f.IsLiteral ? "const " : f.IsStatic ? "static " : "")}{Name(f.FieldType)} {f.Name}");
                        break;
                    case EventInfo e:
                        lines.Add($"  event {Name(e.EventHandlerType!)} {e.Name}");
                        break;
                }
            }
            foreach (string l in lines.Order(StringComparer.Ordinal)) sb.Append(l).Append('\n');
        }
        return sb.ToString();
    }

    private static string Generic(MethodInfo m) => m.IsGenericMethod ? "<" + string.Join(", ", m.GetGenericArguments().Select(Name)) + ">" : "";

    private static string Params(MethodBase m) => string.Join(", ", m.GetParameters().Select(p =>
        (p.IsOut ? "out " : p.ParameterType.IsByRef ? "ref " : "") + Name(p.ParameterType) + " " + p.Name + (p.HasDefaultValue ? " = " + (p.DefaultValue ?? "null") : "")));

    private static string Name(Type t)
    {
        if (t.IsByRef) return Name(t.GetElementType()!);
        if (t.IsGenericParameter) return t.Name;
        if (t.IsArray) return Name(t.GetElementType()!) + "[]";
        string name = t.IsNested ? Name(t.DeclaringType!) + "." + t.Name : (t.Namespace is "MmapQueues" or "System" ? t.Name : t.FullName ?? t.Name);
        if (!t.IsGenericType) return name;
        return name[..name.IndexOf('`')] + "<" + string.Join(", ", t.GetGenericArguments().Select(Name)) + ">";
    }

    private static string Diff(string expected, string actual)
    {
        var e = expected.Split('\n').ToHashSet();
        var a = actual.Split('\n').ToHashSet();
        return string.Join('\n', e.Except(a).Select(l => "- " + l).Concat(a.Except(e).Select(l => "+ " + l)));
    }
}
