"""The faces of one photo: a group photo has one portrait rig per face.

Rigs whose `photo` is the same image are that photo's faces, each keyed on its
own. The rig of the lowest face number leads: the group's frames are one
sequence, in the lead's output folder, made by one preview or Generate that
names every face (the backend draws them all into one frame). A photo with a
single rig is the one-face case, and everything works as it always did.
"""
from __future__ import annotations

import bpy

COLLECTION_PREFIX = "Enliven"


def face_rigs(obj: bpy.types.Object) -> list[bpy.types.Object]:
    """The rigs of `obj`'s photo, one per face (of several rigs of one face, the first by name), lowest face
    number first; [obj] when it has no photo or is its photo's only rig."""
    photo = obj.enliven.photo
    if photo is None:
        return [obj]
    rigs: dict[int, bpy.types.Object] = {}
    # One pass, no sort: this runs on every frame change and panel redraw, over every object in the file.
    for other in bpy.data.objects:
        rig = other.enliven
        if rig.is_rig and rig.photo == photo and other.users:
            held = rigs.get(rig.face_index)
            if held is None or other.name < held.name:
                rigs[rig.face_index] = other
    if rigs.get(obj.enliven.face_index) is not obj:
        return [obj]  # a second rig of one face: it renders on its own
    return [rigs[face] for face in sorted(rigs)]


def lead_rig(obj: bpy.types.Object) -> bpy.types.Object:
    """The rig whose output folder and compositor nodes the faces of `obj`'s photo share."""
    return face_rigs(obj)[0]


def add_face_rigs(obj: bpy.types.Object, faces: list[int]) -> list[bpy.types.Object]:
    """Give each face of `obj`'s photo a rig of its own (a copy of `obj` set to that face, named after it), and
    put them all in one collection named after the photo; returns the new rigs."""
    have = {rig.enliven.face_index for rig in face_rigs(obj)}
    collection = _collection(obj)
    base = obj.name
    added = []
    for face in faces:
        if face in have:
            continue
        rig = obj.copy()  # the photo, the display and the settings; keys stay with the original
        rig.animation_data_clear()
        rig.name = f"{base} face {face}"
        rig.enliven.face_index = face
        collection.objects.link(rig)
        added.append(rig)
    return added


def _collection(obj: bpy.types.Object) -> bpy.types.Collection:
    """The photo's collection, holding `obj` (moved into it from wherever it was)."""
    name = f"{COLLECTION_PREFIX} {obj.enliven.photo.name}"
    collection = bpy.data.collections.get(name)
    if collection is None:
        collection = bpy.data.collections.new(name)
        scene = obj.users_scene[0] if obj.users_scene else bpy.context.scene
        scene.collection.children.link(collection)
    if obj.name not in collection.objects:
        collection.objects.link(obj)
        for other in list(obj.users_collection):
            if other != collection:
                other.objects.unlink(obj)
    return collection
